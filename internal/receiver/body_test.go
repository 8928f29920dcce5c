package receiver

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	small := []byte(`{"type":"pushImage"}`)
	big := bytes.Repeat([]byte("a"), MaxBody+10)
	boom := errors.New("connection reset")
	tests := []struct {
		name     string
		r        io.Reader
		declared int64
		want     []byte // the bytes read
		err      error
	}{
		{"declared length", bytes.NewReader(small), int64(len(small)), small, nil},
		{"unknown length", bytes.NewReader(small), -1, small, nil},
		{"unknown length, one byte at a time", iotest.OneByteReader(bytes.NewReader(small)), -1, small, nil},
		{"empty", bytes.NewReader(nil), 0, []byte{}, nil},
		{"declared too short: read to the end anyway", bytes.NewReader(small), 3, small, nil},
		{"declared too long", bytes.NewReader(small), 4096, small, nil},
		{"exactly MaxBody", bytes.NewReader(big[:MaxBody]), MaxBody, big[:MaxBody], nil},
		{"exactly MaxBody, unknown length", bytes.NewReader(big[:MaxBody]), -1, big[:MaxBody], nil},
		{"over MaxBody: one byte more is read", bytes.NewReader(big), int64(len(big)), big[:MaxBody+1], nil},
		{"over MaxBody, unknown length", bytes.NewReader(big), -1, big[:MaxBody+1], nil},
		{"over MaxBody, declared within", bytes.NewReader(big), 10, big[:MaxBody+1], nil},
		{"read error", io.MultiReader(bytes.NewReader(small), iotest.ErrReader(boom)), int64(len(small)) + 5, small, boom},
		{"data with the error", iotest.DataErrReader(bytes.NewReader(small)), int64(len(small)), small, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readBody(tt.r, tt.declared)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("read %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

// TestReadBodyAllocatesOnce checks that a body of declared length is read
// into one buffer.
func TestReadBodyAllocatesOnce(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 3000)
	r := bytes.NewReader(body)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(body)
		if b, err := readBody(r, int64(len(body))); err != nil || len(b) != len(body) {
			t.Fatalf("read %d bytes, %v", len(b), err)
		}
	})
	if allocs != 1 {
		t.Errorf("%v allocations, want 1", allocs)
	}
}
