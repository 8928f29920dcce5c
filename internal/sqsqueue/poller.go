package sqsqueue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/regtrigger/regtrigger/internal/delivery"
	"github.com/regtrigger/regtrigger/internal/dispatcher"
)

// Poller is the queue as a dispatcher.Pool sees it, for platforms without an
// SQS trigger (Tencent SCF's timer function): Lease long-polls, Ack deletes,
// Retry sends the task on with its delay and deletes the received message.
// The Pool then runs exactly the worker, retry and log code of
// `regtrigger serve`.
//
// Differences from the embedded queue, all SQS's:
//   - Lease holds a message by its visibility timeout (leaseFor, set on
//     each receive); a worker that dies leaves it to come back by itself.
//   - A message received before its not_before time is sent on with the
//     rest of its wait and deleted inside Lease (no attempt counted); it is
//     never handed to the Pool.
//   - DeadLetter leaves the message alone: the queue's redrive policy moves
//     it to the dead-letter queue after maxReceiveCount receives, intact.
//   - NextDue never knows (SQS cannot tell); the long poll is the wait.
//
// A Poller is safe for concurrent use by the Pool's workers.
type Poller struct {
	Queue *Queue
	// Wait is the longest long poll of one Lease (at most 20 s, SQS's limit;
	// default 20 s). A Lease never polls past its context's deadline.
	Wait time.Duration
	// Archive, when set, keeps each finished task for redelivery; its
	// failure is logged by nobody and loses no delivery.
	Archive func(ctx context.Context, t delivery.Task) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	leased map[string][]leasedMessage // by Leased.ID; a duplicate message shares its task's id
}

type leasedMessage struct {
	receipt string
	task    delivery.Task
}

var _ dispatcher.Queue = (*Poller)(nil)

// Lease receives up to max messages (at most 10), hidden for leaseFor.
// Leased.ID is the task id, or the SQS message id of an undecodable message.
func (p *Poller) Lease(ctx context.Context, max int, leaseFor time.Duration) ([]dispatcher.Leased, error) {
	wait := p.Wait
	if wait <= 0 || wait > 20*time.Second {
		wait = 20 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		// A poll cut off by the deadline could lose sight of messages SQS
		// already handed out (they come back only after leaseFor).
		wait = min(wait, time.Until(dl)-time.Second)
		if wait < time.Second {
			return nil, nil
		}
	}
	msgs, err := p.Queue.receive(ctx, max, wait, leaseFor)
	if err != nil {
		return nil, err
	}
	out := make([]dispatcher.Leased, 0, len(msgs))
	for _, m := range msgs {
		if m.Err != nil {
			p.hold(m.MessageID, leasedMessage{receipt: m.ReceiptHandle})
			out = append(out, dispatcher.Leased{ID: m.MessageID, Err: m.Err})
			continue
		}
		if nb := m.NotBefore; nb.After(p.now()) {
			// Early: on with the rest of its wait. Should that fail, the
			// message comes back after leaseFor and is tried again.
			if err := p.Queue.Reschedule(ctx, m.Task, nb.Sub(p.now())); err == nil {
				_ = p.Queue.Delete(ctx, m.ReceiptHandle)
			}
			continue
		}
		p.hold(m.Task.ID, leasedMessage{receipt: m.ReceiptHandle, task: m.Task})
		out = append(out, dispatcher.Leased{ID: m.Task.ID, Task: m.Task})
	}
	return out, nil
}

// Ack deletes a finished task's message, after archiving the task.
func (p *Poller) Ack(ctx context.Context, id string) error {
	m, ok := p.take(id)
	if !ok {
		return fmt.Errorf("ack %s: not leased by this poller", id)
	}
	if p.Archive != nil {
		_ = p.Archive(ctx, m.task)
	}
	return p.Queue.Delete(ctx, m.receipt)
}

// Retry sends t on, due after delay, then deletes the message it came in.
// If the delete fails the old message comes back and the attempt is made
// again (at least once); its webhook-id is the same.
func (p *Poller) Retry(ctx context.Context, t delivery.Task, delay time.Duration) error {
	m, ok := p.take(t.ID)
	if !ok {
		return fmt.Errorf("retry %s: not leased by this poller", t.ID)
	}
	if err := p.Queue.Reschedule(ctx, t, delay); err != nil {
		return err
	}
	return p.Queue.Delete(ctx, m.receipt)
}

// DeadLetter forgets the message: the redrive policy dead-letters it.
func (p *Poller) DeadLetter(_ context.Context, id string, _ error) error {
	p.take(id)
	return nil
}

// NextDue is unknown on SQS.
func (p *Poller) NextDue(context.Context) (time.Time, bool, error) {
	return time.Time{}, false, nil
}

func (p *Poller) hold(id string, m leasedMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leased == nil {
		p.leased = map[string][]leasedMessage{}
	}
	p.leased[id] = append(p.leased[id], m)
}

func (p *Poller) take(id string) (leasedMessage, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ms := p.leased[id]
	if len(ms) == 0 {
		return leasedMessage{}, false
	}
	m := ms[0]
	if len(ms) == 1 {
		delete(p.leased, id)
	} else {
		p.leased[id] = ms[1:]
	}
	return m, true
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}
