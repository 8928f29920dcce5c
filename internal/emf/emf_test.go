package emf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestEmit(t *testing.T) {
	var b bytes.Buffer
	w := New(&b)
	w.now = func() time.Time { return time.UnixMilli(1700000000123) }
	if err := w.Emit(map[string]string{"Function": "dispatcher", "Status": "success"},
		Metric{"Deliveries", Count, 1}, Metric{"DeliveryLatency", Milliseconds, 12.5}); err != nil {
		t.Fatal(err)
	}
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function        string
		Status          string
		Deliveries      float64
		DeliveryLatency float64
	}
	if err := json.Unmarshal(b.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	m := line.AWS.CloudWatchMetrics[0]
	if line.AWS.Timestamp != 1700000000123 || m.Namespace != "regtrigger" || len(m.Dimensions[0]) != 2 || m.Dimensions[0][0] != "Function" ||
		len(m.Metrics) != 2 || line.Deliveries != 1 || line.DeliveryLatency != 12.5 || line.Status != "success" {
		t.Errorf("%+v", line)
	}
	var nilw *Writer
	if err := nilw.Emit(nil, Metric{"x", Count, 1}); err != nil {
		t.Error("a nil writer is a no-op")
	}
}

// TestEmitSets: several directives in one line, each with its dimensions;
// empty sets are left out.
func TestEmitSets(t *testing.T) {
	tests := []struct {
		name  string
		sets  []Set
		lines int
		dims  [][]string // per directive
	}{
		{"two sets", []Set{{[]string{"Function", "Status"}, []Metric{{"Notifications", Count, 1}}}, {[]string{"Function"}, []Metric{{"TasksEnqueued", Count, 3}}}},
			1, [][]string{{"Function", "Status"}, {"Function"}}},
		{"an empty set left out", []Set{{[]string{"Function", "Status"}, []Metric{{"Notifications", Count, 1}}}, {[]string{"Function"}, nil}},
			1, [][]string{{"Function", "Status"}}},
		{"nothing to write", []Set{{[]string{"Function"}, nil}}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := New(&b)
			if err := w.EmitSets(map[string]string{"Function": "receiver", "Status": "202"}, tt.sets...); err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b.Bytes(), []byte("\n")); n != tt.lines {
				t.Fatalf("%d lines, want %d: %s", n, tt.lines, b.String())
			}
			if tt.lines == 0 {
				return
			}
			var line struct {
				AWS struct {
					CloudWatchMetrics []struct {
						Dimensions [][]string
						Metrics    []struct{ Name string }
					}
				} `json:"_aws"`
				Status        string
				Notifications float64
			}
			if err := json.Unmarshal(b.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			if len(line.AWS.CloudWatchMetrics) != len(tt.dims) || line.Status != "202" || line.Notifications != 1 {
				t.Fatalf("%s", b.String())
			}
			for i, d := range line.AWS.CloudWatchMetrics {
				if fmt.Sprint(d.Dimensions) != fmt.Sprint([][]string{tt.dims[i]}) {
					t.Errorf("directive %d dimensions %v, want %v", i, d.Dimensions, tt.dims[i])
				}
			}
		})
	}
}
