package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// CNCF Distribution (registry:2, registry 3, GitLab's registry) sends
// envelopes {"events": [...]}, with Content-Type
// application/vnd.docker.distribution.events.v1+json (2.x) or v2+json (3.x).
// Layer (blob) events share the envelope and fire nothing, and neither do
// manifests pushed without a tag: the per-platform manifests of a multi-arch
// push arrive that way, right before the tagged index.

// Content types of Distribution envelopes.
const (
	DistributionEventsV1 = "application/vnd.docker.distribution.events.v1+json"
	DistributionEventsV2 = "application/vnd.docker.distribution.events.v2+json"
)

// manifestTypes are the media types of manifests and indexes.
var manifestTypes = map[string]bool{
	"application/vnd.docker.distribution.manifest.v1+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.oci.artifact.manifest.v1+json":             true,
}

type distributionEnvelope struct {
	Events []distributionEvent `json:"events"`
}

type distributionEvent struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
	Actor struct {
		Name string `json:"name"`
	} `json:"actor"`
}

func detectDistribution(o object, h http.Header) bool {
	switch mediaType(h) {
	case DistributionEventsV1, DistributionEventsV2:
		return true
	}
	raw, ok := o["events"]
	if !ok {
		return false
	}
	var evs []map[string]json.RawMessage
	if json.Unmarshal(raw, &evs) != nil {
		return false
	}
	for _, e := range evs {
		if _, ok := e["action"]; !ok {
			return false
		}
		if _, ok := e["target"]; !ok {
			return false
		}
	}
	return true
}

func parseDistribution(n Notification) ([]event.Event, error) {
	const source = "distribution"
	var env distributionEnvelope
	if err := unmarshal(source, n.Body, &env); err != nil {
		return nil, err
	}
	var o object
	_ = json.Unmarshal(n.Body, &o)
	if !o.has("events") {
		return nil, malformed(source, "events is missing: a Distribution notification is an envelope {\"events\": [...]}")
	}
	var out []event.Event
	for i, e := range env.Events {
		t := e.Target
		if t.Repository == "" {
			return nil, malformed(source, "events[%d].target.repository is missing", i)
		}
		mt := strings.ToLower(t.MediaType)
		var action event.Action
		switch e.Action {
		case "push":
			if !manifestTypes[mt] || t.Tag == "" {
				continue // a layer, or a platform manifest of a multi-arch push
			}
			action = event.PushImage
		case "pull":
			if !manifestTypes[mt] || t.Tag == "" {
				continue // a layer, or a pull by digest (the platform manifest after its index)
			}
			action = event.PullImage
		case "delete":
			if mt != "" && !manifestTypes[mt] {
				continue // a blob
			}
			action = event.DeleteImage
		default:
			continue // mount and future actions
		}
		at := n.ReceivedAt.UTC()
		if e.Timestamp != "" {
			ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
			if err != nil {
				return nil, malformed(source, "events[%d].timestamp %q is not RFC 3339", i, e.Timestamp)
			}
			at = ts.UTC()
		}
		host := e.Request.Host
		if host == "" && t.URL != "" {
			if u, err := url.Parse(t.URL); err == nil {
				host = u.Host
			}
		}
		ns, repo := splitPath(t.Repository)
		out = append(out, event.Event{
			Source: source, Action: action, Namespace: ns, Repository: repo, Tag: t.Tag, Digest: t.Digest,
			ResourceURL: reference(host, "", strings.Trim(t.Repository, "/"), t.Tag, t.Digest),
			OccurredAt:  at, Operator: e.Actor.Name, MediaType: t.MediaType, Registry: host, Raw: n.Body,
		})
	}
	return out, nil
}
