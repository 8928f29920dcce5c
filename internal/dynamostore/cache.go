package dynamostore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/regtrigger/regtrigger/internal/trigger"
)

// DefaultCacheTTL is how long CachedTriggers keeps a namespace's triggers.
const DefaultCacheTTL = 10 * time.Second

// maxCachedNamespaces bounds the cache; past it, expired entries are swept
// and, if that is not enough, it starts over.
const maxCachedNamespaces = 4096

var _ trigger.Store = (*CachedTriggers)(nil)

// CachedTriggers is a trigger.Store whose Namespace answers from memory for
// TTL after a read, so a warm Lambda does not Query once per notification.
// A trigger changed elsewhere (the CLI, another instance) is seen at most
// TTL later; writes through this value drop the cache at once. Empty
// answers are cached too (most notifications may be for namespaces without
// triggers); errors are not.
//
// The zero value with a Store is ready; it is safe for concurrent use.
// Concurrent misses of one namespace may each read the store (no
// single-flight).
type CachedTriggers struct {
	trigger.Store
	// TTL is how long an answer is reused (0 = DefaultCacheTTL).
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	m  map[string]cachedNamespace
}

type cachedNamespace struct {
	triggers []trigger.Trigger
	expires  time.Time
}

func (c *CachedTriggers) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *CachedTriggers) ttl() time.Duration {
	if c.TTL > 0 {
		return c.TTL
	}
	return DefaultCacheTTL
}

// Namespace returns the namespace's triggers, from the cache when a read
// younger than TTL has them. Callers get their own slice.
func (c *CachedTriggers) Namespace(ctx context.Context, namespace string) ([]trigger.Trigger, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[namespace]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return slices.Clone(e.triggers), nil
	}
	ts, err := c.Store.Namespace(ctx, namespace)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]cachedNamespace)
	}
	if len(c.m) >= maxCachedNamespaces {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedNamespaces {
			c.m = make(map[string]cachedNamespace)
		}
	}
	c.m[namespace] = cachedNamespace{triggers: slices.Clone(ts), expires: now.Add(c.ttl())}
	c.mu.Unlock()
	return ts, nil
}

// Invalidate drops every cached answer.
func (c *CachedTriggers) Invalidate() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// Create creates through the store and drops the cache.
func (c *CachedTriggers) Create(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	defer c.Invalidate()
	return c.Store.Create(ctx, t)
}

// Update updates through the store and drops the cache.
func (c *CachedTriggers) Update(ctx context.Context, t trigger.Trigger) (trigger.Trigger, error) {
	defer c.Invalidate()
	return c.Store.Update(ctx, t)
}

// Delete deletes through the store and drops the cache.
func (c *CachedTriggers) Delete(ctx context.Context, name string, version int64) error {
	defer c.Invalidate()
	return c.Store.Delete(ctx, name, version)
}
