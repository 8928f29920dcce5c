package receiver

import (
	"context"
	"fmt"
	"sync"

	"github.com/regtrigger/regtrigger/internal/matcher"
	"github.com/regtrigger/regtrigger/internal/trigger"
)

// matcherCache keeps one compiled Matcher per namespace and recompiles it
// only when the namespace's triggers change (names or versions), so the
// patterns of a busy namespace are compiled once, not per notification.
type matcherCache struct {
	mu sync.Mutex
	m  map[string]cachedMatcher
}

type cachedMatcher struct {
	revs    []revision // of the triggers the matcher was compiled from
	matcher *matcher.Matcher
}

// revision identifies one revision of a trigger. Stores bump Version on
// every write; the updated-at time covers triggers that were never stored.
type revision struct {
	name      string
	version   int64
	updatedAt int64 // Unix nanoseconds
}

func revisionOf(t *trigger.Trigger) revision {
	return revision{name: t.Name, version: t.Version, updatedAt: t.UpdatedAt.UnixNano()}
}

// maxCachedNamespaces bounds the cache; past it, it starts over.
const maxCachedNamespaces = 4096

func (s *Service) matcherFor(ctx context.Context, namespace string) (*matcher.Matcher, error) {
	ts, err := s.Triggers.Namespace(ctx, namespace)
	if err != nil {
		return nil, fmt.Errorf("load triggers for %s: %w", namespace, err)
	}
	return s.matchers.get(namespace, ts)
}

func (c *matcherCache) get(namespace string, ts []trigger.Trigger) (*matcher.Matcher, error) {
	c.mu.Lock()
	cm, ok := c.m[namespace]
	c.mu.Unlock()
	// A cached entry is never modified, so it is compared outside the lock.
	if ok && sameRevisions(cm.revs, ts) {
		return cm.matcher, nil
	}
	m, err := matcher.New(ts)
	if err != nil {
		return nil, fmt.Errorf("compile triggers of %s: %w", namespace, err)
	}
	revs := make([]revision, len(ts))
	for i := range ts {
		revs[i] = revisionOf(&ts[i])
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedNamespaces {
		c.m = make(map[string]cachedMatcher)
	}
	c.m[namespace] = cachedMatcher{revs: revs, matcher: m}
	c.mu.Unlock()
	return m, nil
}

// sameRevisions reports whether ts are the trigger revisions revs, in order.
func sameRevisions(revs []revision, ts []trigger.Trigger) bool {
	if len(revs) != len(ts) {
		return false
	}
	for i := range ts {
		if revisionOf(&ts[i]) != revs[i] {
			return false
		}
	}
	return true
}
