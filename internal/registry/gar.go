package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Google Artifact Registry (and Container Registry before it) publishes to
// the Pub/Sub topic "gcr"; a push subscription POSTs
// {"message": {"data": <base64>, "messageId", "publishTime", "attributes"},
// "subscription": "projects/P/subscriptions/S"}. The data is
// {"action": "INSERT"|"DELETE", "digest": "<host>/<path>@sha256:...",
// "tag": "<host>/<path>:<tag>"}, both fully qualified references, either
// of which may be missing. With the subscription's "payload unwrapping" the
// body is that message data itself, and the publish time moves to the
// x-goog-pubsub-publish-time header (when metadata is written).

// pubsubPublishTimeHeader carries the publish time of an unwrapped message.
const pubsubPublishTimeHeader = "X-Goog-Pubsub-Publish-Time"

type pubsubEnvelope struct {
	Message      *pubsubMessage `json:"message"`
	Subscription string         `json:"subscription"`
}

type pubsubMessage struct {
	Data             string `json:"data"`
	PublishTime      string `json:"publishTime"`
	PublishTimeSnake string `json:"publish_time"`
}

type garMessage struct {
	Action string `json:"action"`
	Digest string `json:"digest"`
	Tag    string `json:"tag"`
}

var (
	pubsubEnvelopeFields = jsonNames[pubsubEnvelope]()
	pubsubMessageFields  = jsonNames[pubsubMessage]()
	garMessageFields     = jsonNames[garMessage]()
)

func (*pubsubEnvelope) fields() []string { return pubsubEnvelopeFields }

func (e *pubsubEnvelope) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "message":
		return decodePtr(val, &e.Message)
	case "subscription":
		return decodeString(val, &e.Subscription)
	}
	return false
}

func (*pubsubMessage) fields() []string { return pubsubMessageFields }

func (m *pubsubMessage) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "data":
		return decodeString(val, &m.Data)
	case "publishTime":
		return decodeString(val, &m.PublishTime)
	case "publish_time":
		return decodeString(val, &m.PublishTimeSnake)
	}
	return false
}

func (*garMessage) fields() []string { return garMessageFields }

func (m *garMessage) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "action":
		return decodeString(val, &m.Action)
	case "digest":
		return decodeString(val, &m.Digest)
	case "tag":
		return decodeString(val, &m.Tag)
	}
	return false
}

// detectPubSub: a Pub/Sub push envelope.
func detectPubSub(t *top, _ http.Header) bool {
	o := t.obj
	return o.has("message", "subscription") && objectHas(o.get("message"), "data")
}

// detectGARMessage: the message data posted as is (payload unwrapping): an
// INSERT or DELETE with a reference, and no other key.
func detectGARMessage(t *top, _ http.Header) bool {
	o := t.obj
	a := o.str("action")
	return (a == "INSERT" || a == "DELETE") && (o.has("digest") || o.has("tag")) && keysWithin(o, "action", "digest", "tag")
}

func parsePubSub(n Notification, t *top) ([]event.Event, error) {
	const source = "gar"
	var env pubsubEnvelope
	if err := decodeBody(source, n, t, &env); err != nil {
		return nil, err
	}
	m := env.Message
	switch {
	case m == nil:
		return nil, malformed(source, `message is missing: a Pub/Sub push body is {"message": {"data": ...}, "subscription": ...}`)
	case m.Data == "":
		return nil, malformed(source, "message.data is missing")
	}
	data, err := base64.StdEncoding.DecodeString(m.Data)
	if err != nil {
		// Pub/Sub pads; a sender that does not is still readable.
		if data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(m.Data, "=")); err != nil {
			return nil, malformed(source, "message.data is not base64: %v", err)
		}
	}
	if d := bytes.TrimSpace(data); len(d) == 0 || d[0] != '{' {
		return nil, malformed(source, "message.data does not hold a JSON object")
	}
	var msg garMessage
	if valid(data) {
		err = decodeAt(source, "message.data", trimSpace(data), &msg)
	} else {
		err = unmarshalAt(source, "message.data", data, &msg) // which says what is wrong
	}
	if err != nil {
		return nil, err
	}
	published := m.PublishTime
	if published == "" {
		published = m.PublishTimeSnake
	}
	at, err := rfc3339Time(published)
	if err != nil {
		return nil, malformed(source, "message.publishTime: %v", err)
	}
	return garEvents(n, msg, "message.data.", at)
}

func parseGARMessage(n Notification, t *top) ([]event.Event, error) {
	const source = "gar"
	var msg garMessage
	if err := decodeBody(source, n, t, &msg); err != nil {
		return nil, err
	}
	at, err := rfc3339Time(n.Header.Get(pubsubPublishTimeHeader))
	if err != nil {
		return nil, malformed(source, "%s header: %v", pubsubPublishTimeHeader, err)
	}
	return garEvents(n, msg, "", at)
}

// garEvents makes the (at most one) event of a message; where prefixes the
// fields named in errors.
func garEvents(n Notification, msg garMessage, where string, at time.Time) ([]event.Event, error) {
	const source = "gar"
	var action event.Action
	switch msg.Action {
	case "INSERT":
		action = event.PushImage
	case "DELETE":
		action = event.DeleteImage
	case "":
		return nil, malformed(source, "%saction is missing", where)
	default:
		return nil, unsupported(source, msg.Action)
	}
	var path, tag, digest string
	if msg.Tag != "" {
		// The tag follows the last ':' after the last '/' (a host may have a port).
		slash := strings.LastIndexByte(msg.Tag, '/')
		colon := strings.LastIndexByte(msg.Tag, ':')
		if slash < 0 || colon < slash || colon == len(msg.Tag)-1 || strings.Contains(msg.Tag, "@") {
			return nil, malformed(source, "%stag %q is not a reference <host>/<path>:<tag>", where, msg.Tag)
		}
		path, tag = msg.Tag[:colon], msg.Tag[colon+1:]
	}
	if msg.Digest != "" {
		p, d, ok := strings.Cut(msg.Digest, "@")
		if !ok || d == "" || p == "" {
			return nil, malformed(source, "%sdigest %q is not a reference <host>/<path>@<digest>", where, msg.Digest)
		}
		if path != "" && p != path {
			return nil, malformed(source, "%sdigest %q and tag %q name different images", where, msg.Digest, msg.Tag)
		}
		path, digest = p, d
	}
	switch {
	case path == "":
		return nil, malformed(source, "%sdigest and tag are both missing", where)
	case action == event.PushImage && tag == "":
		// An untagged manifest (a platform manifest of a multi-arch push),
		// as Distribution does.
		return nil, nil
	}
	host, rest, _ := strings.Cut(path, "/")
	if hostOf(path) == "" {
		return nil, malformed(source, "%q does not start with a registry host", path)
	}
	ns, repo, ok := garNames(rest)
	if !ok {
		return nil, malformed(source, "%q names no project and image after the host", path)
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	ref := msg.Tag
	if tag == "" {
		ref = msg.Digest
	}
	return []event.Event{{
		Source: source, Action: action, Namespace: ns, Repository: repo, Tag: tag, Digest: digest,
		ResourceURL: ref, OccurredAt: at, Registry: host, Raw: n.Body,
	}}, nil
}

// garNames splits the path after the host: the project is the namespace,
// the rest (Artifact Registry: <repository>/<image...>; Container Registry:
// <image...>) the repository. A domain-scoped project "example.com:proj"
// appears in paths as "example.com/proj"; it becomes the namespace
// "example.com:proj", its real id (a namespace cannot hold '/').
func garNames(rest string) (namespace, repository string, ok bool) {
	project, repo, ok := strings.Cut(strings.Trim(rest, "/"), "/")
	if !ok || project == "" {
		return "", "", false
	}
	if strings.Contains(project, ".") {
		// Project ids are lowercase letters, digits and '-': a '.' is a domain.
		var name string
		if name, repo, ok = strings.Cut(repo, "/"); !ok || name == "" {
			return "", "", false
		}
		project += ":" + name
	}
	if repo = strings.Trim(repo, "/"); repo == "" {
		return "", "", false
	}
	return project, repo, true
}
