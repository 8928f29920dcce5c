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

func detectQuay(t *top, _ http.Header) bool { return t.obj.has("docker_url", "updated_tags") }

func parseQuay(n Notification, _ *top) ([]event.Event, error) {
	const source = "quay"
	var b quayBody
	if err := unmarshal(source, n.Body, &b); err != nil {
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

// quayTags reads updated_tags: an array of tags, or (the 2013 format) an
// object whose keys are the tags, in body order.
func quayTags(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, errors.New("updated_tags is missing")
	}
	var tags []string
	switch raw[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("updated_tags: %v", err)
		}
		for i, it := range items {
			var s string
			if json.Unmarshal(it, &s) != nil {
				return nil, fmt.Errorf("updated_tags[%d]: want a JSON string, found a JSON %s", i, jsonKind(it[0]))
			}
			tags = append(tags, s)
		}
	case '{':
		keys, err := objectKeys(raw)
		if err != nil {
			return nil, fmt.Errorf("updated_tags: %v", err)
		}
		tags = keys
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

// objectKeys returns the keys of a JSON object in the order they appear
// (a Go map would lose it).
func objectKeys(raw json.RawMessage) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return nil, err
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string) // object keys are always strings
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
