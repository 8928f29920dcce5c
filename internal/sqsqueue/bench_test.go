package sqsqueue_test

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/sqsqueue"
)

// benchTasks are a typical task (tcr format, custom header, one signing
// secret) and a raw-format task carrying a 100 KiB registry body, which
// JSON stores in base64 (about 137 KiB of message).
func benchTasks(b *testing.B) []struct {
	name string
	task delivery.Task
} {
	b.Helper()
	unit, err := os.ReadFile("../registry/testdata/registry-payloads/ghcr/package-published-docker-octokit.json")
	if err != nil {
		b.Fatal(err)
	}
	raw := sampleTask(2)
	raw.Raw = bytes.Repeat(unit, 100<<10/len(unit)+1)[:100<<10]
	return []struct {
		name string
		task delivery.Task
	}{{"task=typical", sampleTask(1)}, {"task=raw-100KiB", raw}}
}

// BenchmarkEncode measures the message body the receiver sends for a task;
// throughput is of the encoded body.
func BenchmarkEncode(b *testing.B) {
	for _, c := range benchTasks(b) {
		b.Run(c.name, func(b *testing.B) {
			body, err := sqsqueue.Encode(c.task)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := sqsqueue.Encode(c.task); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures the dispatcher's reading of a message body;
// throughput is of the encoded body.
func BenchmarkDecode(b *testing.B) {
	for _, c := range benchTasks(b) {
		b.Run(c.name, func(b *testing.B) {
			body, err := sqsqueue.Encode(c.task)
			if err != nil {
				b.Fatal(err)
			}
			if got, err := sqsqueue.Decode(body); err != nil || !reflect.DeepEqual(got, c.task) {
				b.Fatalf("round trip: %v", err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := sqsqueue.Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
