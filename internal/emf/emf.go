// Package emf writes CloudWatch Embedded Metric Format lines: JSON log lines
// that CloudWatch Logs turns into metrics without any API call, so a Lambda
// function reports counts and latencies by printing.
//
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package emf

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of regtrigger's metrics.
const Namespace = "regtrigger"

// Units.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
)

// Metric is one value.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Writer emits metric lines. It is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
}

// New writes to out (os.Stdout in a Lambda function).
func New(out io.Writer) *Writer { return &Writer{out: out, now: time.Now} }

// Emit writes one line with the metrics under the given dimensions
// (e.g. {"Function": "receiver", "Status": "success"}). Dimension values
// also appear as properties, as the format requires.
func (w *Writer) Emit(dims map[string]string, metrics ...Metric) error {
	if w == nil || len(metrics) == 0 {
		return nil
	}
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	defs := make([]map[string]string, len(metrics))
	line := map[string]any{}
	for k, v := range dims {
		line[k] = v
	}
	for i, m := range metrics {
		defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
		line[m.Name] = m.Value
	}
	line["_aws"] = map[string]any{
		"Timestamp": w.now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  Namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.out.Write(append(b, '\n'))
	return err
}
