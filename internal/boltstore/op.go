package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/localqueue"
)

// opKind says what a journaled write does.
type opKind byte

// The journaled writes: everything serve writes per notification and per
// delivery.
const (
	opEnqueue    opKind = 1 // ClaimEnqueue: duplicate keys and new tasks
	opFinish     opKind = 2 // Finish: a task leaves the queue, with its record
	opReschedule opKind = 3 // Reschedule: a task's new payload and due time, with its record
	opRecord     opKind = 4 // Records.Put
)

// op is one journaled write: written to the journal first (the caller
// returns once it is durable there), applied to the bbolt file later, in
// journal order, by the checkpointer.
type op struct {
	kind    opKind
	claims  []claimed   // enqueue: expiry and hash are written
	tasks   []taskWrite // enqueue
	task    taskKey     // finish, reschedule; record when hasTask
	hasTask bool        // record: the record names a task
	stored  time.Time   // finish, reschedule: the task's pending entry
	due     time.Time   // reschedule
	id      string      // reschedule
	payload []byte      // reschedule
	rec     *storedRecord

	lsn    uint64 // in the journal
	direct bool   // too large for the journal: written to the file at once
}

// taskWrite is a new task.
type taskWrite struct {
	key     taskKey
	due     time.Time
	id      string
	payload []byte
	value   any // Item.Value: kept in memory, not journaled
}

// storedRecord is a record as the file keeps it (localqueue.StoredRecord).
type storedRecord = localqueue.StoredRecord

// put writes the record (nothing for nil) with its index entries; task,
// when not nil, is the task key its records_task entry names.
func putRecord(tx *bolt.Tx, r *storedRecord, task []byte) error {
	if r == nil {
		return nil
	}
	recs := appending(tx, bRecords)
	seq, err := recs.NextSequence()
	if err != nil {
		return err
	}
	key := join(nanos(r.At), u64(seq))
	if err := recs.Put(key, r.JSON); err != nil {
		return err
	}
	if r.Trigger != "" {
		if err := tx.Bucket(bRecordsTrigger).Put(indexKey(r.Trigger, key), nil); err != nil {
			return err
		}
	}
	if r.TaskID != "" {
		if err := tx.Bucket(bRecordsTask).Put(indexKey(r.TaskID, key), task); err != nil {
			return err
		}
	}
	return nil
}

// apply makes o's change in tx.
func (o *op) apply(tx *bolt.Tx) error {
	switch o.kind {
	case opEnqueue:
		if err := putClaims(tx, o.claims); err != nil {
			return err
		}
		tasks, pending := appending(tx, bTasks), appending(tx, bPending)
		for _, t := range o.tasks {
			if err := tasks.Put(t.key[:], t.payload); err != nil {
				return err
			}
			if err := pending.Put(pendingKey(t.due, t.key), []byte(t.id)); err != nil {
				return err
			}
			// Open numbers new tasks after the highest sequence stored.
			if seq := binary.BigEndian.Uint64(t.key[8:]); seq > tasks.Sequence() {
				if err := tasks.SetSequence(seq); err != nil {
					return err
				}
			}
		}
		return nil
	case opFinish:
		if err := tx.Bucket(bPending).Delete(pendingKey(o.stored, o.task)); err != nil {
			return err
		}
		return putRecord(tx, o.rec, o.task[:])
	case opReschedule:
		if err := tx.Bucket(bTasks).Put(o.task[:], o.payload); err != nil {
			return err
		}
		pending := tx.Bucket(bPending)
		if err := pending.Delete(pendingKey(o.stored, o.task)); err != nil {
			return err
		}
		if err := pending.Put(pendingKey(o.due, o.task), []byte(o.id)); err != nil {
			return err
		}
		return putRecord(tx, o.rec, o.task[:])
	case opRecord:
		var task []byte
		if o.hasTask {
			task = o.task[:]
		}
		return putRecord(tx, o.rec, task)
	}
	return fmt.Errorf("unknown journal operation %d", o.kind)
}

// encode appends o's journal record to b. Layout (big-endian; str and
// bytes are a uvarint length, then the bytes; time is 8 bytes of
// nanoseconds):
//
//	kind(1)
//	enqueue:    n claims × (expiry time, hash 16), n tasks × (key 16, due time, id str, payload bytes)
//	finish:     task 16, stored time, record
//	reschedule: task 16, stored time, due time, id str, payload bytes, record
//	record:     has task (1), [task 16], record
//	record:     present (1), [at time, trigger str, task id str, json bytes]
func (o *op) encode(b []byte) []byte {
	b = append(b, byte(o.kind))
	switch o.kind {
	case opEnqueue:
		b = binary.AppendUvarint(b, uint64(len(o.claims)))
		for _, c := range o.claims {
			b = binary.BigEndian.AppendUint64(b, uint64(max(c.Expiry, 0)))
			b = append(b, c.Hash[:]...)
		}
		b = binary.AppendUvarint(b, uint64(len(o.tasks)))
		for _, t := range o.tasks {
			b = append(b, t.key[:]...)
			b = append(b, nanos(t.due)...)
			b = appendBytes(b, []byte(t.id))
			b = appendBytes(b, t.payload)
		}
	case opFinish:
		b = append(b, o.task[:]...)
		b = append(b, nanos(o.stored)...)
		b = appendRecord(b, o.rec)
	case opReschedule:
		b = append(b, o.task[:]...)
		b = append(b, nanos(o.stored)...)
		b = append(b, nanos(o.due)...)
		b = appendBytes(b, []byte(o.id))
		b = appendBytes(b, o.payload)
		b = appendRecord(b, o.rec)
	case opRecord:
		if o.hasTask {
			b = append(b, 1)
			b = append(b, o.task[:]...)
		} else {
			b = append(b, 0)
		}
		b = appendRecord(b, o.rec)
	}
	return b
}

func appendRecord(b []byte, r *storedRecord) []byte {
	if r == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = append(b, nanos(r.At)...)
	b = appendBytes(b, []byte(r.Trigger))
	b = appendBytes(b, []byte(r.TaskID))
	return appendBytes(b, r.JSON)
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// decodeOp reads a journal record written by encode. The slices of the op
// are copies: data may be reused.
func decodeOp(data []byte) (*op, error) {
	d := &decoder{b: data}
	o := &op{kind: opKind(d.byte())}
	switch o.kind {
	case opEnqueue:
		n := d.count(24)
		for i := 0; i < n && d.err == nil; i++ {
			c := claimed{Expiry: d.time().UnixNano()}
			copy(c.Hash[:], d.fixed(16))
			o.claims = append(o.claims, c)
		}
		n = d.count(26)
		for i := 0; i < n && d.err == nil; i++ {
			var t taskWrite
			copy(t.key[:], d.fixed(16))
			t.due = d.time()
			t.id = string(d.bytes())
			t.payload = d.bytes()
			o.tasks = append(o.tasks, t)
		}
	case opFinish:
		copy(o.task[:], d.fixed(16))
		o.stored = d.time()
		o.rec = d.record()
	case opReschedule:
		copy(o.task[:], d.fixed(16))
		o.stored = d.time()
		o.due = d.time()
		o.id = string(d.bytes())
		o.payload = d.bytes()
		o.rec = d.record()
	case opRecord:
		if o.hasTask = d.flag(); o.hasTask {
			copy(o.task[:], d.fixed(16))
		}
		o.rec = d.record()
	default:
		if d.err == nil {
			d.err = fmt.Errorf("unknown operation %d", o.kind)
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes left over", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode journal record: %w", d.err)
	}
	return o, nil
}

// decoder reads what encode wrote; its first error sticks, and every read
// after it gives zero values.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("record ends early")

func (d *decoder) fixed(n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if len(d.b) < n {
		d.err = errShort
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte { return d.fixed(1)[0] }

// time reads what nanos wrote: never more than math.MaxInt64.
func (d *decoder) time() time.Time {
	b := d.fixed(8)
	if d.err == nil && b[0]&0x80 != 0 {
		d.err = errors.New("a time out of range")
	}
	return fromNanos(b)
}

// flag reads a byte that is 0 or 1.
func (d *decoder) flag() bool {
	switch b := d.byte(); {
	case b <= 1:
		return b == 1
	case d.err == nil:
		d.err = fmt.Errorf("a flag of %d", b)
	}
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n <= 0:
		d.err = errShort
		return 0
	case n != len(binary.AppendUvarint(nil, v)):
		d.err = errors.New("a length in more bytes than needed") // encode never writes one
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count of items of at least min bytes each, refusing one
// the rest of the record could not hold.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) {
		d.err = fmt.Errorf("%d items cannot fit in %d bytes", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	return append([]byte(nil), d.fixed(int(n))...)
}

func (d *decoder) record() *storedRecord {
	if !d.flag() {
		return nil
	}
	return &storedRecord{At: d.time(), Trigger: string(d.bytes()), TaskID: string(d.bytes()), JSON: d.bytes()}
}
