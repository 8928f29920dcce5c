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

// Set is metrics reported under one set of dimension names; the
// dimensions' values are the line's properties.
type Set struct {
	Dimensions []string
	Metrics    []Metric
}

// Emit writes one line with the metrics under the given dimensions
// (e.g. {"Function": "receiver", "Status": "success"}). Dimension values
// also appear as properties, as the format requires.
func (w *Writer) Emit(dims map[string]string, metrics ...Metric) error {
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return w.EmitSets(dims, Set{Dimensions: keys, Metrics: metrics})
}

// EmitSets writes one line holding several metric directives, each with its
// own dimension names, over one set of properties (the dimension values):
// one line instead of one per set, with the same metrics in CloudWatch.
// Metric names must differ across the sets; sets without metrics are left
// out, and nothing is written when no set has one.
func (w *Writer) EmitSets(props map[string]string, sets ...Set) error {
	if w == nil {
		return nil
	}
	line := map[string]any{}
	for k, v := range props {
		line[k] = v
	}
	directives := make([]map[string]any, 0, len(sets))
	for _, set := range sets {
		if len(set.Metrics) == 0 {
			continue
		}
		defs := make([]map[string]string, len(set.Metrics))
		for i, m := range set.Metrics {
			defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
			line[m.Name] = m.Value
		}
		dims := set.Dimensions
		if dims == nil {
			dims = []string{}
		}
		directives = append(directives, map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{dims},
			"Metrics":    defs,
		})
	}
	if len(directives) == 0 {
		return nil
	}
	line["_aws"] = map[string]any{
		"Timestamp":         w.now().UnixMilli(),
		"CloudWatchMetrics": directives,
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
