package receiver

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	key     string
	matcher *matcher.Matcher
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
	key := versionKey(ts)
	c.mu.Lock()
	if cm, ok := c.m[namespace]; ok && cm.key == key {
		c.mu.Unlock()
		return cm.matcher, nil
	}
	c.mu.Unlock()
	m, err := matcher.New(ts)
	if err != nil {
		return nil, fmt.Errorf("compile triggers of %s: %w", namespace, err)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedNamespaces {
		c.m = make(map[string]cachedMatcher)
	}
	c.m[namespace] = cachedMatcher{key: key, matcher: m}
	c.mu.Unlock()
	return m, nil
}

// versionKey identifies a set of trigger revisions. Stores bump Version on
// every write; the updated-at time covers triggers that were never stored.
func versionKey(ts []trigger.Trigger) string {
	var b strings.Builder
	for i := range ts {
		b.WriteString(ts[i].Name)
		b.WriteByte('@')
		b.WriteString(strconv.FormatInt(ts[i].Version, 10))
		b.WriteByte('.')
		b.WriteString(strconv.FormatInt(ts[i].UpdatedAt.UnixNano(), 10))
		b.WriteByte(';')
	}
	return b.String()
}
