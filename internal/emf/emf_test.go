package emf

import (
	"bytes"
	"encoding/json"
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
