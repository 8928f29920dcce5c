// Package taskmsg is the versioned JSON form of a delivery task on a
// message queue: {"v":2,"task":{...}}. It is the contract docs/sqs.md
// describes, for queues other than SQS (the Kafka topic of internal/
// kafkaqueue, the delayed-retry set of internal/redisstore), so a task
// written by one of them decodes in any other.
//
// The task refers to its trigger (namespace, name, revision) and holds no
// URL, header value or secret. The body holds the event, so it is never
// logged, and no error returned here quotes it.
package taskmsg

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
)

// Version is the contract version Encode writes: 2, the task as a
// reference to its trigger.
const Version = 2

// legacyVersion embedded the whole trigger; Decode keeps only the
// reference of such a task.
const legacyVersion = 1

// Message is the body of every queue message: a version and the task.
type Message struct {
	Version int           `json:"v"`
	Task    delivery.Task `json:"task"`
}

var (
	// ErrUndecodable marks a body that is not a task of a known version. It
	// is dispatcher.ErrUndecodable, so either name matches with errors.Is.
	ErrUndecodable = dispatcher.ErrUndecodable
	// ErrTooLarge marks a task whose encoded form exceeds the limit given
	// to Encode.
	ErrTooLarge = errors.New("task too large for one queue message")
)

// Encode returns the body for t, or ErrTooLarge when it is longer than
// limit bytes (limit <= 0: no limit).
func Encode(t delivery.Task, limit int) ([]byte, error) {
	b, err := json.Marshal(Message{Version: Version, Task: t})
	if err != nil {
		return nil, fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	if limit > 0 && len(b) > limit {
		return nil, fmt.Errorf("%w: task %s is %d bytes encoded, the limit is %d (use a non-raw payload format for big registry bodies)", ErrTooLarge, t.ID, len(b), limit)
	}
	return b, nil
}

// Decode reads a body written by Encode (or by the legacy contract). A
// body that is not JSON, has an unknown version, or holds no task id or
// trigger name fails with ErrUndecodable; the error never quotes the body.
func Decode(body []byte) (delivery.Task, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return delivery.Task{}, fmt.Errorf("%w: %d-byte body: %w", ErrUndecodable, len(body), err)
	}
	switch {
	case m.Version != Version && m.Version != legacyVersion:
		return delivery.Task{}, fmt.Errorf("%w: contract version %d (this build reads %d and %d)", ErrUndecodable, m.Version, legacyVersion, Version)
	case m.Task.ID == "":
		return delivery.Task{}, fmt.Errorf("%w: message holds no task id", ErrUndecodable)
	case m.Task.Trigger.Name == "":
		return delivery.Task{}, fmt.Errorf("%w: task %s names no trigger", ErrUndecodable, m.Task.ID)
	}
	return m.Task, nil
}
