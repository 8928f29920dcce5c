package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Azure Container Registry reports the same event object two ways:
//
//   - a webhook POSTs it as the body: {"id", "timestamp", "action",
//     "target": {mediaType, digest, repository, tag, name, version},
//     "request": {host, ...}}; actions push, delete, chart_push,
//     chart_delete, quarantine and ping (`az acr webhook ping`);
//   - Azure Event Grid wraps it as the "data" of an event whose type is
//     Microsoft.ContainerRegistry.ImagePushed, ImageDeleted, ChartPushed or
//     ChartDeleted. The Event Grid schema delivers a JSON array of events;
//     the CloudEvents schema one event (application/cloudevents+json) or an
//     array (application/cloudevents-batch+json). Since 2020 ACR delivers
//     "data" as a JSON string holding the object.
//
// Event Grid's subscription validation is answered by Handshake before a
// body gets here; parsing one gives zero events.

// azureActions are the webhook actions that fire triggers.
var azureActions = map[string]event.Action{
	"push":         event.PushImage,
	"delete":       event.DeleteImage,
	"chart_push":   event.UploadChart,
	"chart_delete": event.DeleteChart,
}

// azureIgnored are webhook actions ACR sends that fire nothing.
var azureIgnored = map[string]bool{"quarantine": true, "ping": true}

// eventGridActions maps the Event Grid types of ACR to webhook actions.
var eventGridActions = map[string]string{
	"Microsoft.ContainerRegistry.ImagePushed":  "push",
	"Microsoft.ContainerRegistry.ImageDeleted": "delete",
	"Microsoft.ContainerRegistry.ChartPushed":  "chart_push",
	"Microsoft.ContainerRegistry.ChartDeleted": "chart_delete",
}

// eventGridIgnored are Event Grid's own events that reach a subscription's
// endpoint and fire nothing.
var eventGridIgnored = map[string]bool{
	EventGridValidationType:                        true,
	"Microsoft.EventGrid.SubscriptionDeletedEvent": true,
}

// azureData is one ACR event: a webhook body, or an Event Grid event's data.
// Its request and actor are those of Distribution's events.
type azureData struct {
	Timestamp string              `json:"timestamp"`
	Action    string              `json:"action"`
	Target    *azureTarget        `json:"target"`
	Request   distributionRequest `json:"request"`
	Actor     distributionActor   `json:"actor"`
}

type azureTarget struct {
	MediaType  string `json:"mediaType"`
	Digest     string `json:"digest"`
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	Name       string `json:"name"`    // charts
	Version    string `json:"version"` // charts
}

var (
	azureDataFields      = jsonNames[azureData]()
	azureTargetFields    = jsonNames[azureTarget]()
	eventGridEventFields = jsonNames[eventGridEvent]()
)

func (*azureData) fields() []string { return azureDataFields }

func (d *azureData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "timestamp":
		return decodeString(val, &d.Timestamp)
	case "action":
		return decodeString(val, &d.Action)
	case "target":
		return decodePtr(val, &d.Target)
	case "request":
		return decodeStruct(val, &d.Request)
	case "actor":
		return decodeStruct(val, &d.Actor)
	}
	return false
}

func (*azureTarget) fields() []string { return azureTargetFields }

func (t *azureTarget) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "mediaType":
		return decodeString(val, &t.MediaType)
	case "digest":
		return decodeString(val, &t.Digest)
	case "repository":
		return decodeString(val, &t.Repository)
	case "tag":
		return decodeString(val, &t.Tag)
	case "name":
		return decodeString(val, &t.Name)
	case "version":
		return decodeString(val, &t.Version)
	}
	return false
}

// detectAzureWebhook: a top-level action and target (Distribution nests
// them in "events"); a ping may carry nothing else.
func detectAzureWebhook(t *top, _ http.Header) bool {
	o := t.obj
	if o.has("events") || !o.has("action") {
		return false
	}
	return o.has("target") || (o.str("action") == "ping" && keysWithin(o, "id", "timestamp", "action", "request", "target"))
}

func parseAzureWebhook(n Notification, t *top) ([]event.Event, error) {
	const source = "azure"
	var d azureData
	if err := decodeBody(source, n, t, &d); err != nil {
		return nil, err
	}
	if d.Action == "" {
		return nil, malformed(source, "action is missing")
	}
	return azureEvent(n, d, d.Action, "", time.Time{})
}

// azureEvent makes the (at most one) event of an ACR event. where prefixes
// the fields named in errors ("" for a webhook, "data" for Event Grid);
// fallback is the time to use when the data has none.
func azureEvent(n Notification, d azureData, actionName, where string, fallback time.Time) ([]event.Event, error) {
	const source = "azure"
	field := func(f string) string {
		if where == "" {
			return f
		}
		return where + "." + f
	}
	if azureIgnored[actionName] {
		return nil, nil
	}
	action, ok := azureActions[actionName]
	if !ok {
		return nil, unsupported(source, actionName)
	}
	t := d.Target
	if t == nil {
		return nil, malformed(source, "%s is missing", field("target"))
	}
	at, err := rfc3339Time(d.Timestamp)
	if err != nil {
		return nil, malformed(source, "%s: %v", field("timestamp"), err)
	}
	if at.IsZero() {
		at = fallback
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	host := d.Request.Host
	e := event.Event{
		Source: source, Action: action, Digest: t.Digest, MediaType: t.MediaType,
		OccurredAt: at, Operator: d.Actor.Name, Registry: host, Raw: n.Body,
	}

	if action.IsChart() {
		// Helm charts (ACR's legacy Helm repositories) are named by
		// target.name and version; target.repository is the Helm
		// repository holding them, which becomes the namespace. The
		// documented version reads "5.4.0.tgz": the archive suffix is not
		// part of a chart version, so it is dropped.
		if t.Name == "" {
			return nil, malformed(source, "%s is missing", field("target.name"))
		}
		version := strings.TrimSuffix(t.Version, ".tgz")
		if version == "" {
			return nil, malformed(source, "%s (the chart version) is missing", field("target.version"))
		}
		full := strings.Trim(t.Name, "/")
		if repo := strings.Trim(t.Repository, "/"); repo != "" {
			full = repo + "/" + full
		}
		e.Namespace, e.Repository = splitPath(full)
		e.Tag = version
		// The body names no download URL for a chart; none is made up.
		return []event.Event{e}, nil
	}

	repository := strings.Trim(t.Repository, "/")
	if repository == "" {
		return nil, malformed(source, "%s is missing", field("target.repository"))
	}
	switch {
	case action == event.PushImage && t.Tag == "":
		// A manifest pushed by digest only (the per-platform manifests of
		// a multi-arch push), as Distribution does.
		return nil, nil
	case t.Tag == "" && t.Digest == "":
		return nil, malformed(source, "%s has neither tag nor digest", field("target"))
	}
	e.Namespace, e.Repository = splitPath(repository)
	e.Tag = t.Tag
	e.ResourceURL = reference(host, "", repository, t.Tag, t.Digest)
	return []event.Event{e}, nil
}

// Event Grid.

type eventGridEvent struct {
	EventType   string          `json:"eventType"` // Event Grid schema
	EventTime   string          `json:"eventTime"`
	SpecVersion string          `json:"specversion"` // CloudEvents schema
	Type        string          `json:"type"`
	Time        string          `json:"time"`
	Data        json.RawMessage `json:"data"`
}

func (*eventGridEvent) fields() []string { return eventGridEventFields }

func (ev *eventGridEvent) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "eventType":
		return decodeString(val, &ev.EventType)
	case "eventTime":
		return decodeString(val, &ev.EventTime)
	case "specversion":
		return decodeString(val, &ev.SpecVersion)
	case "type":
		return decodeString(val, &ev.Type)
	case "time":
		return decodeString(val, &ev.Time)
	case "data":
		ev.Data = val
		return true
	}
	return false
}

// eventGridType returns the event type of an Event Grid event in either
// schema ("" when it has none).
func eventGridType(o object) string {
	if t := o.str("eventType"); t != "" {
		return t
	}
	if o.has("specversion") {
		return o.str("type")
	}
	return ""
}

// detectEventGrid: an event of ACR's (or Event Grid's own) in either schema.
func detectEventGrid(t *top, _ http.Header) bool { return isEventGridEvent(t.obj) }

// detectEventGridArray: every element is such an event.
func detectEventGridArray(items []object, _ http.Header) bool {
	for _, o := range items {
		if !isEventGridEvent(o) {
			return false
		}
	}
	return len(items) > 0
}

// isEventGridEvent reports whether o is an event of ACR's (or Event
// Grid's own) in either schema.
func isEventGridEvent(o object) bool {
	t := eventGridType(o)
	return strings.HasPrefix(t, "Microsoft.ContainerRegistry.") || strings.HasPrefix(t, "Microsoft.EventGrid.")
}

// parseEventGrid parses one Event Grid event or an array of them. The
// body is valid JSON (decode read it), and so is every part of it.
func parseEventGrid(n Notification, _ *top) ([]event.Event, error) {
	body := bytes.TrimSpace(n.Body)
	if len(body) > 0 && body[0] == '[' {
		var out []event.Event
		i := 0
		for val := range elements(body) {
			evs, err := eventGridItem(n, val, fmt.Sprintf("[%d]", i))
			if err != nil {
				return nil, err
			}
			out = append(out, evs...)
			i++
		}
		if i == 0 {
			return nil, malformed("azure", "the array holds no event")
		}
		return out, nil
	}
	return eventGridItem(n, body, "")
}

// eventGridItem parses one Event Grid event; where is its place in an
// array ("[0]") or "" for a single event.
func eventGridItem(n Notification, raw []byte, where string) ([]event.Event, error) {
	const source = "azure"
	field := func(f string) string {
		if where == "" {
			return f
		}
		return where + "." + f
	}
	var ev eventGridEvent
	if err := decodeAt(source, where, raw, &ev); err != nil {
		return nil, err
	}
	typ, when, timeField := ev.EventType, ev.EventTime, "eventTime"
	if typ == "" && ev.SpecVersion != "" {
		typ, when, timeField = ev.Type, ev.Time, "time"
	}
	if typ == "" {
		return nil, malformed(source, "%s is missing (or type, with specversion)", field("eventType"))
	}
	if eventGridIgnored[typ] {
		return nil, nil
	}
	actionName, ok := eventGridActions[typ]
	if !ok {
		return nil, unsupported(source, typ)
	}
	at, err := rfc3339Time(when)
	if err != nil {
		return nil, malformed(source, "%s: %v", field(timeField), err)
	}
	data, err := eventGridData(ev.Data, field("data"))
	if err != nil {
		return nil, err
	}
	var d azureData
	if err := decodeAt(source, field("data"), data, &d); err != nil {
		return nil, err
	}
	return azureEvent(n, d, actionName, field("data"), at)
}

// eventGridData returns the object an Event Grid event carries, which ACR
// sends either as an object or as a JSON string holding one; raw is valid
// JSON, and so is the object returned.
func eventGridData(raw json.RawMessage, field string) ([]byte, error) {
	const source = "azure"
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, malformed(source, "%s is missing", field)
	}
	switch raw[0] {
	case '{':
		return raw, nil
	case '"':
		inner := bytes.TrimSpace([]byte(unquote(raw)))
		if len(inner) == 0 || inner[0] != '{' || !valid(inner) {
			return nil, malformed(source, "%s: a JSON string that does not hold a JSON object", field)
		}
		return inner, nil
	}
	return nil, malformed(source, "%s: want a JSON object (or a string holding one), found a JSON %s", field, jsonKind(raw[0]))
}
