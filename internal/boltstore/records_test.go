package boltstore

import (
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/regtrigger/regtrigger/internal/record"
)

// recs renders records as task:status, in order.

// putRecord writes a record and its index entries in tx (for bulk loads).
func putRecord(tx *bolt.Tx, r record.Record, task []byte) error {
	enc, err := encodeRecord(&r, time.Now())
	if err != nil {
		return err
	}
	return enc.put(tx, task)
}
