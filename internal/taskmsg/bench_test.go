package taskmsg

import "testing"

// BenchmarkEncodeDecode: one task through its queue body and back.
func BenchmarkEncodeDecode(b *testing.B) {
	t := sampleTask()
	b.ReportAllocs()
	for b.Loop() {
		body, err := Encode(t, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
