// Package sqsqueue is the Amazon SQS adapter of regtrigger's delivery queue.
//
// The receiver function enqueues tasks with Queue.Enqueue (SendMessageBatch,
// in groups of at most 10); the dispatcher function is invoked by the SQS
// event source with batches of messages, decodes each with Decode and, when
// a delivery must be retried, sends the task back with Queue.Reschedule (a
// new message carrying the incremented attempt count, delayed by up to
// 15 minutes, with a not_before attribute for longer waits). Platforms
// without an SQS trigger (a timer function) use Receive and Delete.
//
// The message body is the versioned task contract, Message: the task, which
// refers to its trigger by namespace, name and revision and holds no URL,
// header value or secret (the dispatcher reads the trigger when it sends).
// Bodies are still never logged (they hold the event), and no error
// returned here quotes one. See docs/sqs.md.
package sqsqueue

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
	"github.com/regtrigger/regtrigger/internal/taskmsg"
)

// Version is the version of the task contract that Encode writes: 2, the
// task as a reference to its trigger. The contract is package taskmsg's,
// shared with the Kafka and Redis queues; this package adds what SQS needs
// (the escapes of noncharacters, the size limit of a message). Decode
// still reads the legacy contract 1, which embedded the whole trigger, so
// messages queued before an upgrade are delivered (to the trigger as it is
// now); the decoded task keeps only the trigger's namespace, name and
// version, so what such a message embedded is never sent again.
const Version = taskmsg.Version

// MaxMessageBytes is the largest message this package sends: SQS's classic
// 256 KiB limit, which counts the body and the message attributes. (AWS
// raised the hard limit to 1 MiB in 2025, but a queue's MaximumMessageSize
// may be lower, and 256 KiB works everywhere.)
const MaxMessageBytes = 256 << 10

// attributeReserve is the part of MaxMessageBytes kept for the message
// attributes (task_id, attempt, not_before: well under 200 bytes).
const attributeReserve = 1 << 10

// MaxBodyBytes is the largest encoded task Encode accepts.
const MaxBodyBytes = MaxMessageBytes - attributeReserve

// Message is the body of every queue message: a version and the task.
type Message = taskmsg.Message

var (
	// ErrUndecodable marks a message body that is not a task of a known
	// version. It is dispatcher.ErrUndecodable, so either name matches with
	// errors.Is. The dispatcher leaves such messages to the redrive policy,
	// which moves them to the dead-letter queue.
	ErrUndecodable = dispatcher.ErrUndecodable

	// ErrTooLarge marks a task whose encoded message exceeds MaxBodyBytes
	// (typically a "raw" trigger carrying a big registry body, which JSON
	// stores in base64). Such a task is refused before anything is sent.
	ErrTooLarge = errors.New("task too large for an SQS message")
)

// Encode returns the message body for t. It fails with ErrTooLarge when the
// body would exceed MaxBodyBytes.
func Encode(t delivery.Task) (string, error) {
	b, err := taskmsg.Encode(t, 0)
	if err != nil {
		return "", err
	}
	b = escapeNoncharacters(b)
	if len(b) > MaxBodyBytes {
		return "", fmt.Errorf("%w: task %s is %d bytes encoded, the limit is %d (use a non-raw payload format for big registry bodies)", ErrTooLarge, t.ID, len(b), MaxBodyBytes)
	}
	return string(b), nil
}

// Decode reads a message body written by Encode (or, for messages queued
// before an upgrade, by the legacy contract). A body that is not JSON, has
// an unknown version, or holds no task id or trigger name fails with
// ErrUndecodable; the error never quotes the body.
func Decode(body string) (delivery.Task, error) { return taskmsg.Decode([]byte(body)) }

// escapeNoncharacters rewrites U+FFFE and U+FFFF, which encoding/json
// writes as they are but SQS refuses in a message body, as JSON escapes.
// They can only occur inside JSON strings, where the escape means the same.
func escapeNoncharacters(b []byte) []byte {
	if !bytes.Contains(b, []byte("\uFFFE")) && !bytes.Contains(b, []byte("\uFFFF")) {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\uFFFE"), []byte(`\ufffe`))
	return bytes.ReplaceAll(b, []byte("\uFFFF"), []byte(`\uffff`))
}

// legacyPrefix starts every body of the legacy contract: Encode of that
// version marshalled Message{Version: 1, ...}, which begins with its "v".
const legacyPrefix = `{"v":1,`

// Legacy reports whether body is a message of the legacy contract, which
// embedded the whole trigger (URL, headers, secrets). Such a message must
// leave the queue at its first receive: the dispatcher never holds one for
// a retry but sends the retry as a new message of the current contract.
func Legacy(body string) bool { return strings.HasPrefix(body, legacyPrefix) }
