package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/regtrigger/regtrigger/internal/payload"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// DefaultTriggerCacheTTL is how long TriggerCache reuses a read.
const DefaultTriggerCacheTTL = 10 * time.Second

// maxCachedTriggers bounds TriggerCache; past it, expired entries are
// swept and, if that is not enough, it starts over.
const maxCachedTriggers = 4096

var _ Triggers = (*TriggerCache)(nil)

// TriggerCache is a Triggers that answers from memory for TTL after a read,
// so a burst of tasks for one trigger reads the store once, not once per
// task. An edit, a disable or a delete made elsewhere reaches the tasks
// sent here at most TTL later. A missing trigger is remembered too (its
// tasks are cancelled); a failed read is not.
//
// The zero value with Triggers set is ready; it is safe for concurrent use.
type TriggerCache struct {
	Triggers Triggers
	// TTL is how long an answer is reused (0 = DefaultTriggerCacheTTL).
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[string]cachedTrigger
}

type cachedTrigger struct {
	t       trigger.Trigger
	missing bool
	expires time.Time
}

// Get returns the trigger, from memory when a read younger than TTL has it.
func (c *TriggerCache) Get(ctx context.Context, name string) (trigger.Trigger, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[name]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.missing {
			return trigger.Trigger{}, trigger.ErrNotFound
		}
		return e.t, nil
	}
	t, err := c.Triggers.Get(ctx, name)
	missing := errors.Is(err, trigger.ErrNotFound)
	if err != nil && !missing {
		return trigger.Trigger{}, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]cachedTrigger)
	}
	if len(c.m) >= maxCachedTriggers {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedTriggers {
			clear(c.m)
		}
	}
	c.m[name] = cachedTrigger{t: t, missing: missing, expires: now.Add(c.ttl())}
	c.mu.Unlock()
	return t, err
}

// Forget drops every cached answer, so the next Get of each trigger reads
// the store.
func (c *TriggerCache) Forget() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// Drop forgets the cached answer for name, so the next Get of it reads
// the store: the engine drops a trigger it has just written itself (an
// auto-disable), whose change must not wait for the TTL here.
func (c *TriggerCache) Drop(name string) {
	c.mu.Lock()
	delete(c.m, name)
	c.mu.Unlock()
}

func (c *TriggerCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *TriggerCache) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultTriggerCacheTTL
}

// Fixed is a Triggers holding the given triggers and no others, by name:
// for a one-off send (check-url --send) and for tests.
type Fixed map[string]trigger.Trigger

var _ Triggers = Fixed(nil)

// FixedTriggers holds ts.
func FixedTriggers(ts ...trigger.Trigger) Fixed {
	f := make(Fixed, len(ts))
	for _, t := range ts {
		f[t.Name] = t
	}
	return f
}

// Get returns the trigger named name, or trigger.ErrNotFound.
func (f Fixed) Get(_ context.Context, name string) (trigger.Trigger, error) {
	t, ok := f[name]
	if !ok {
		return trigger.Trigger{}, trigger.ErrNotFound
	}
	return t, nil
}

// maxCachedTemplates bounds templateCache.
const maxCachedTemplates = 1024

// templates are the compiled trigger templates of every Engine: a
// compiled template depends on its text and content type only.
var templates templateCache

// templateCache keeps compiled trigger templates by their text and content
// type, so a template is parsed (and checked on the sample events) once,
// not per delivery. The zero value is ready.
type templateCache struct {
	mu sync.Mutex
	m  map[[2]string]*payload.Tmpl
}

func (c *templateCache) get(text, contentType string) (*payload.Tmpl, error) {
	k := [2]string{text, contentType}
	c.mu.Lock()
	t, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := payload.ParseTemplate(text, contentType)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTemplates {
		c.m = make(map[[2]string]*payload.Tmpl)
	}
	c.m[k] = t
	c.mu.Unlock()
	return t, nil
}
