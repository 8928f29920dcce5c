package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Quay (quay.io, Red Hat Quay) sends a repository notification for "Push to
// Repository" (repo_push): the repository's names, its docker_url and
// updated_tags, the tags the push changed. There is no digest, no time and
// no event-type field: the event is fixed by how the notification was
// configured, and other Quay events (builds, vulnerabilities, mirroring)
// have no updated_tags. Quay's v2 API sends one notification per pushed
// tag; the 2013 format sent updated_tags as an object tag → image id.

type quayBody struct {
	Name        string          `json:"name"`
	Repository  string          `json:"repository"`
	Namespace   string          `json:"namespace"`
	DockerURL   string          `json:"docker_url"`
	UpdatedTags json.RawMessage `json:"updated_tags"`
}

var quayBodyFields = jsonNames[quayBody]()

func (*quayBody) fields() []string { return quayBodyFields }

func (b *quayBody) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &b.Name)
	case "repository":
		return decodeString(val, &b.Repository)
	case "namespace":
		return decodeString(val, &b.Namespace)
	case "docker_url":
		return decodeString(val, &b.DockerURL)
	case "updated_tags":
		b.UpdatedTags = val
		return true
	}
	return false
}

func detectQuay(t *top, _ http.Header) bool { return t.obj.has("docker_url", "updated_tags") }

func parseQuay(n Notification, t *top) ([]event.Event, error) {
	const source = "quay"
	var b quayBody
	if err := decodeBody(source, n, t, &b); err != nil {
		return nil, err
	}
	tags, err := quayTags(b.UpdatedTags)
	if err != nil {
		return nil, malformed(source, "%v", err)
	}

	// docker_url is host/namespace/repository, without a scheme.
	dockerURL := strings.TrimRight(b.DockerURL, "/")
	host := hostOf(dockerURL)
	full := strings.Trim(b.Repository, "/")
	if full == "" && dockerURL != "" {
		full = strings.Trim(strings.TrimPrefix(dockerURL, host), "/")
	}
	// The repository name comes from the full name rather than "name": the
	// documented example has "name": "repository" for dgangaia/test.
	ns, repo := b.Namespace, ""
	switch {
	case ns != "" && strings.HasPrefix(full, ns+"/"):
		repo = full[len(ns)+1:]
	case ns == "" && strings.Contains(full, "/"):
		ns, repo = splitPath(full)
	default:
		repo = b.Name
	}
	switch {
	case ns == "":
		return nil, malformed(source, "namespace is missing")
	case repo == "":
		return nil, malformed(source, "repository and name are missing")
	}

	at := n.ReceivedAt.UTC() // Quay sends no time.
	evs := make([]event.Event, 0, len(tags))
	for _, tag := range tags {
		ref := reference("", ns, repo, tag, "")
		if dockerURL != "" {
			ref = dockerURL + ":" + tag
		}
		evs = append(evs, event.Event{
			Source: source, Action: event.PushImage, Namespace: ns, Repository: repo, Tag: tag,
			ResourceURL: ref, OccurredAt: at, Registry: host, Raw: n.Body,
		})
	}
	return evs, nil
}

// quayTags reads updated_tags (valid JSON, from a body that decoded): an
// array of tags, or (the 2013 format) an object whose keys are the tags, in
// body order.
func quayTags(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("updated_tags is missing")
	}
	var tags []string
	switch raw[0] {
	case '[':
		for val := range elements(raw) {
			var s string // null leaves it empty, as encoding/json does
			if !decodeString(val, &s) {
				return nil, fmt.Errorf("updated_tags[%d]: want a JSON string, found a JSON %s", len(tags), jsonKind(val[0]))
			}
			tags = append(tags, s)
		}
	case '{':
		for key := range members(raw) {
			tags = append(tags, string(key))
		}
	default:
		return nil, fmt.Errorf("updated_tags: want a JSON array of tags, found a JSON %s", jsonKind(raw[0]))
	}
	if len(tags) == 0 {
		return nil, errors.New("updated_tags is empty: no tag to report")
	}
	for i, t := range tags {
		if t == "" {
			return nil, fmt.Errorf("updated_tags[%d] is empty", i)
		}
	}
	return tags, nil
}
