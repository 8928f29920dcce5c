package localqueue

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/regtrigger/regtrigger/internal/record"
)

// StoredRecord is a record as an embedded store keeps it: its JSON and the
// fields its keys are made of.
type StoredRecord struct {
	At      time.Time
	Trigger string
	TaskID  string
	JSON    []byte
}

// EncodeRecord encodes r (nil gives nil), with a zero Time set to now.
func EncodeRecord(r *record.Record, now time.Time) (*StoredRecord, error) {
	if r == nil {
		return nil, nil
	}
	rec := *r
	for _, part := range []struct{ what, v string }{{"record's task id", rec.TaskID}, {"record's trigger", rec.Trigger}} {
		if part.v != "" {
			if err := CheckKeyPart(part.what, part.v); err != nil {
				return nil, err
			}
		}
	}
	if rec.Time.IsZero() {
		rec.Time = now.UTC()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return &StoredRecord{At: rec.Time, Trigger: rec.Trigger, TaskID: rec.TaskID, JSON: b}, nil
}

// MaxKeyPart bounds the ids and names that become part of a store key
// (task ids, trigger names): far above what regtrigger makes (tsk_ and 32
// hex digits; names of at most 64 characters), far below bbolt's 32 KiB
// key limit. Writes check it before they are acknowledged, so that no
// later step (bbolt's checkpointer) meets a key the store refuses.
const MaxKeyPart = 1024

// CheckKeyPart refuses an empty or oversized id or name.
func CheckKeyPart(what, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s is empty", what)
	case len(v) > MaxKeyPart:
		return fmt.Errorf("%s is %d bytes long, more than %d", what, len(v), MaxKeyPart)
	}
	return nil
}
