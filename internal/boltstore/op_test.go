package boltstore

import (
	"bytes"
	"testing"
	"time"
)

// sampleOps are one op of each kind, with and without optional parts.
func sampleOps() []*op {
	at := time.Unix(1_800_000_000, 123).UTC()
	rec := &storedRecord{At: at, Trigger: "deploy", TaskID: "tsk_1", JSON: []byte(`{"status":"success"}`)}
	var key taskKey
	copy(key[:], "0123456789abcdef")
	return []*op{
		{kind: opEnqueue, claims: []claimed{{Hash: hashKey("k"), Expiry: at.UnixNano()}},
			tasks: []taskWrite{{key: key, due: at, id: "tsk_1", payload: []byte(`{"id":"tsk_1"}`)}}},
		{kind: opEnqueue, tasks: []taskWrite{{key: key, due: at, id: "a"}, {key: key, due: at.Add(time.Hour), id: "b", payload: []byte("x")}}},
		{kind: opFinish, task: key, stored: at, rec: rec},
		{kind: opFinish, task: key, stored: at},
		{kind: opReschedule, task: key, stored: at, due: at.Add(time.Minute), id: "tsk_1", payload: []byte("p"), rec: rec},
		{kind: opRecord, rec: rec},
		{kind: opRecord, task: key, hasTask: true, rec: rec},
	}
}

func TestOpRoundTrip(t *testing.T) {
	for _, o := range sampleOps() {
		b := o.encode(nil)
		got, err := decodeOp(b)
		if err != nil {
			t.Fatalf("kind %d: %v", o.kind, err)
		}
		if again := got.encode(nil); !bytes.Equal(again, b) {
			t.Errorf("kind %d: encodes as %x after a round trip, was %x", o.kind, again, b)
		}
		if got.kind != o.kind || got.task != o.task || got.hasTask != o.hasTask || !got.due.Equal(o.due) ||
			len(got.tasks) != len(o.tasks) || len(got.claims) != len(o.claims) || (got.rec == nil) != (o.rec == nil) {
			t.Errorf("kind %d: decoded %+v, want %+v", o.kind, got, o)
		}
		for i := range o.tasks {
			w, g := o.tasks[i], got.tasks[i]
			if g.key != w.key || g.id != w.id || !g.due.Equal(w.due) || !bytes.Equal(g.payload, w.payload) {
				t.Errorf("kind %d task %d: %+v, want %+v", o.kind, i, g, w)
			}
		}
		if o.rec != nil && (got.rec.Trigger != o.rec.Trigger || got.rec.TaskID != o.rec.TaskID || !got.rec.At.Equal(o.rec.At) || !bytes.Equal(got.rec.JSON, o.rec.JSON)) {
			t.Errorf("kind %d: record %+v, want %+v", o.kind, got.rec, o.rec)
		}
	}
}

func TestDecodeOpRefusesDamage(t *testing.T) {
	good := sampleOps()[0].encode(nil)
	for _, b := range [][]byte{
		nil,
		{99},
		good[:len(good)-1],
		append(append([]byte{}, good...), 0),
		{byte(opEnqueue), 0xff, 0xff, 0xff, 0xff, 0x0f},                                           // a count no record could hold
		append([]byte{byte(opFinish)}, append(make([]byte, 24), 7)...),                            // a record flag of 7
		append(append([]byte{byte(opFinish)}, make([]byte, 16)...), 0x80, 0, 0, 0, 0, 0, 0, 0, 0), // a time past int64
	} {
		if _, err := decodeOp(b); err == nil {
			t.Errorf("decoded %x", b)
		}
	}
}

// FuzzDecodeOp: any bytes decode to an op or an error, never a panic, and
// what decodes encodes back to the same bytes.
func FuzzDecodeOp(f *testing.F) {
	for _, o := range sampleOps() {
		f.Add(o.encode(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOp(b)
		if err != nil {
			return
		}
		if again := o.encode(nil); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, encodes as %x", b, again)
		}
	})
}
