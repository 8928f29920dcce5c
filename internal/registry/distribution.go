package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

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
	Events *[]distributionEvent `json:"events"`
}

type distributionEvent struct {
	ID        string              `json:"id"`
	Timestamp string              `json:"timestamp"`
	Action    string              `json:"action"`
	Target    distributionTarget  `json:"target"`
	Request   distributionRequest `json:"request"`
	Actor     distributionActor   `json:"actor"`
}

type distributionTarget struct {
	MediaType  string `json:"mediaType"`
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	URL        string `json:"url"`
	Tag        string `json:"tag"`
}

type distributionRequest struct {
	Host string `json:"host"`
}

type distributionActor struct {
	Name string `json:"name"`
}

var (
	distributionEnvelopeFields = jsonNames[distributionEnvelope]()
	distributionEventFields    = jsonNames[distributionEvent]()
	distributionTargetFields   = jsonNames[distributionTarget]()
	distributionRequestFields  = jsonNames[distributionRequest]()
	distributionActorFields    = jsonNames[distributionActor]()
)

func (*distributionEnvelope) fields() []string { return distributionEnvelopeFields }

func (e *distributionEnvelope) decodeField(name string, val json.RawMessage) bool {
	if name != "events" {
		return false
	}
	if val[0] == 'n' {
		e.Events = nil
		return true
	}
	e.Events = new([]distributionEvent)
	return decodeSlice(val, e.Events)
}

func (*distributionEvent) fields() []string { return distributionEventFields }

func (e *distributionEvent) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "id":
		return decodeString(val, &e.ID)
	case "timestamp":
		return decodeString(val, &e.Timestamp)
	case "action":
		return decodeString(val, &e.Action)
	case "target":
		return decodeStruct(val, &e.Target)
	case "request":
		return decodeStruct(val, &e.Request)
	case "actor":
		return decodeStruct(val, &e.Actor)
	}
	return false
}

func (*distributionTarget) fields() []string { return distributionTargetFields }

func (t *distributionTarget) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "mediaType":
		return decodeString(val, &t.MediaType)
	case "digest":
		return decodeString(val, &t.Digest)
	case "repository":
		return decodeString(val, &t.Repository)
	case "url":
		return decodeString(val, &t.URL)
	case "tag":
		return decodeString(val, &t.Tag)
	}
	return false
}

func (*distributionRequest) fields() []string { return distributionRequestFields }

func (r *distributionRequest) decodeField(name string, val json.RawMessage) bool {
	return name == "host" && decodeString(val, &r.Host)
}

func (*distributionActor) fields() []string { return distributionActorFields }

func (a *distributionActor) decodeField(name string, val json.RawMessage) bool {
	return name == "name" && decodeString(val, &a.Name)
}

// detectDistribution: an envelope {"events": [...]}. A body without
// "events" is never Distribution, whatever its Content-Type (the documented
// delete "fragment" {"target": {...}} is not something a registry sends).
// With a Distribution Content-Type the envelope is enough (its events may
// be empty or broken: parsing says what is wrong); without one, every event
// must be an object with "action" and "target", and there must be one.
func detectDistribution(t *top, h http.Header) bool {
	o := t.obj
	raw := o.get("events")
	if raw == nil {
		return false
	}
	switch mediaType(h) {
	case DistributionEventsV1, DistributionEventsV2:
		return true
	}
	if raw[0] != '[' {
		return false
	}
	count := 0
	for val := range elements(raw) {
		if !objectHas(val, "action", "target") {
			return false
		}
		count++
	}
	return count > 0
}

// distributionAction says what a Distribution event means for regtrigger;
// ok is false for events that fire nothing.
func distributionAction(e distributionEvent) (action event.Action, ok bool) {
	t := e.Target
	mt, _, _ := strings.Cut(strings.ToLower(t.MediaType), ";")
	manifest := manifestTypes[strings.TrimSpace(mt)]
	switch e.Action {
	case "push":
		// A layer, or a platform manifest of a multi-arch push (untagged).
		return event.PushImage, manifest && t.Tag != ""
	case "pull":
		// A layer, or a pull by digest (the platform manifest after its index).
		return event.PullImage, manifest && t.Tag != ""
	case "delete":
		// Manifest deletes carry only digest + repository, tag deletes only
		// tag + repository, repository deletes only the repository; none has
		// a media type. One with a non-manifest media type is a blob.
		return event.DeleteImage, t.MediaType == "" || manifest
	}
	return "", false // mount, and actions added later
}

func parseDistribution(n Notification, t *top) ([]event.Event, error) {
	const source = "distribution"
	var env distributionEnvelope
	if err := decodeBody(source, n, t, &env); err != nil {
		return nil, err
	}
	if env.Events == nil {
		return nil, malformed(source, "events is missing: a Distribution notification is an envelope {\"events\": [...]}")
	}
	var out []event.Event
	for i, e := range *env.Events {
		action, ok := distributionAction(e)
		if !ok {
			continue
		}
		t := e.Target
		repository := strings.Trim(t.Repository, "/")
		if repository == "" {
			return nil, malformed(source, "events[%d].target.repository is missing", i)
		}
		at, err := rfc3339Time(e.Timestamp)
		if err != nil {
			return nil, malformed(source, "events[%d].timestamp: %v", i, err)
		}
		if at.IsZero() {
			at = n.ReceivedAt.UTC()
		}
		host := e.Request.Host
		if host == "" && t.URL != "" {
			if u, err := url.Parse(t.URL); err == nil {
				host = u.Host
			}
		}
		ns, repo := splitPath(repository)
		out = append(out, event.Event{
			Source: source, Action: action, Namespace: ns, Repository: repo, Tag: t.Tag, Digest: t.Digest,
			ResourceURL: reference(host, "", repository, t.Tag, t.Digest),
			OccurredAt:  at, Operator: e.Actor.Name, MediaType: t.MediaType, Registry: host, Raw: n.Body,
		})
	}
	return out, nil
}
