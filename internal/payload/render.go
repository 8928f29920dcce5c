package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Meta is what the renderer needs besides the event.
type Meta struct {
	// TaskID is the delivery task id; CloudEvents uses it as the event id.
	TaskID string
	// Trigger is the name of the trigger that fired.
	Trigger string
	// Time is the send time, used when the event has no time of its own
	// and by the signatures that carry a timestamp.
	Time time.Time
	// Secret is the trigger's signing secret for the formats that sign in
	// the body (feishu); "" signs nothing.
	Secret string
	// Template is the trigger's compiled template, for format template.
	Template *Tmpl
	// Events are the events of a coalesced delivery (a trigger's coalesce
	// option), in arrival order, the rendered event included; nil for a
	// delivery of one event. The formats that can carry a list list them
	// all (see list.go); acr and dockerhub carry the rendered event only,
	// which is the last to arrive.
	Events []event.Event
}

// Content types.
const (
	ContentTypeJSON        = "application/json"
	ContentTypeCloudEvents = "application/cloudevents+json"
)

// Errors of Render.
var (
	// ErrNoRaw means the raw format was asked for an event without its body.
	ErrNoRaw = errors.New("raw format: the registry's original body is not available")
	// ErrNoTaskID means the cloudevents format was asked for without a task
	// id: CloudEvents requires a non-empty id, and regtrigger's is the task id.
	ErrNoTaskID = errors.New("cloudevents format: the task id (the event id) is empty")
	// ErrNoTemplate means the template format was asked for without one.
	ErrNoTemplate = errors.New("template format: the trigger has no template")
)

// Render returns the request body for format f and its Content-Type.
// Output is deterministic: the same event and meta give the same bytes.
// JSON is compact, with no HTML escaping ("<", ">" and "&" are written as
// is) and no trailing newline; invalid UTF-8 in event fields is replaced
// by U+FFFD, so every non-raw body is valid JSON.
//
// An action outside event.Actions is still rendered (tcr sends it as the
// type, harbor upper-cased, cloudevents as io.regtrigger.<action>), so a
// new action reaches receivers before the tables here learn its name.
//
// The raw body is returned as is (it is ev.Raw itself, not a copy).
func Render(f Format, ev event.Event, m Meta) (body []byte, contentType string, err error) {
	switch f {
	case TCR, "":
		return encode(tcrBody(ev, m), ContentTypeJSON)
	case Harbor:
		return encode(harborBody(ev, m), ContentTypeJSON)
	case ACR:
		return encode(acrBody(ev, m), ContentTypeJSON)
	case CloudEvents:
		if m.TaskID == "" {
			return nil, "", ErrNoTaskID
		}
		return encode(cloudEvent(ev, m), ContentTypeCloudEvents)
	case Raw:
		if len(ev.Raw) == 0 {
			return nil, "", ErrNoRaw
		}
		return ev.Raw, ContentTypeJSON, nil
	case Slack:
		return encode(slackBody(ev, m), ContentTypeJSON)
	case Teams:
		return encode(teamsBody(ev, m), ContentTypeJSON)
	case WeCom:
		return encode(wecomBody(ev, m), ContentTypeJSON)
	case DingTalk:
		return encode(dingtalkBody(ev, m), ContentTypeJSON)
	case Feishu:
		return encode(feishuBody(ev, m), ContentTypeJSON)
	case Flux:
		// The Receiver reads no field of the body: any JSON it can sign.
		return encode(tcrBody(ev, m), ContentTypeJSON)
	case DockerHub:
		return encode(dockerhubBody(ev, m), ContentTypeJSON)
	case Template:
		if m.Template == nil {
			return nil, "", ErrNoTemplate
		}
		b, err := m.Template.Execute(ev, m)
		if err != nil {
			return nil, "", err
		}
		return b, m.Template.ContentType(), nil
	}
	return nil, "", fmt.Errorf("render: unknown format %q", f)
}

// encode marshals v without HTML escaping and without a trailing newline.
func encode(v any, ctype string) ([]byte, string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, "", fmt.Errorf("render: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), ctype, nil
}

func occurred(ev event.Event, m Meta) time.Time {
	if !ev.OccurredAt.IsZero() {
		return ev.OccurredAt.UTC()
	}
	if !m.Time.IsZero() {
		return m.Time.UTC()
	}
	return time.Unix(0, 0).UTC()
}

// --- tcr: the Tencent TCR / Harbor 1.x body ----------------------------------

// The field order follows the TCR documentation's example exactly.
type tcrPayload struct {
	Type      event.Action `json:"type"`
	OccurAt   int64        `json:"occur_at"`
	EventData harborData   `json:"event_data"`
	Operator  string       `json:"operator"`
}

type harborData struct {
	// An event is one resource; a coalesced delivery one per distinct
	// digest and tag of its events.
	Resources  []harborResource `json:"resources"`
	Repository harborRepository `json:"repository"`
}

type harborResource struct {
	Digest      string `json:"digest"`
	Tag         string `json:"tag"`
	ResourceURL string `json:"resource_url"`
}

// DateCreated is when the repository was created. regtrigger does not know
// it (no event carries it), so it is 0: the key stays, because TCR always
// sends it and a receiver may read it unconditionally, and 0 is a value no
// real repository has, so "unknown" is not mistaken for a date. Using the
// event time instead would look plausible and be false. RepoType
// ("public"/"private") is likewise unknown and "".
type harborRepository struct {
	DateCreated  int64  `json:"date_created"`
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	RepoFullName string `json:"repo_full_name"`
	RepoType     string `json:"repo_type"`
}

func harborParts(ev event.Event, m Meta) harborData {
	return harborData{
		Resources:  resources(ev, m),
		Repository: harborRepository{Name: ev.Repository, Namespace: ev.Namespace, RepoFullName: ev.FullName()},
	}
}

func tcrBody(ev event.Event, m Meta) tcrPayload {
	return tcrPayload{Type: ev.Action, OccurAt: occurred(ev, m).Unix(), EventData: harborParts(ev, m), Operator: ev.Operator}
}

// --- harbor: the Harbor 2 default body -----------------------------------------

type harborPayload struct {
	Type      string     `json:"type"`
	OccurAt   int64      `json:"occur_at"`
	Operator  string     `json:"operator"`
	EventData harborData `json:"event_data"`
}

// HarborTypes maps actions to Harbor 2 event types.
var HarborTypes = map[event.Action]string{
	event.PushImage:     "PUSH_ARTIFACT",
	event.PullImage:     "PULL_ARTIFACT",
	event.DeleteImage:   "DELETE_ARTIFACT",
	event.UploadChart:   "UPLOAD_CHART",
	event.DownloadChart: "DOWNLOAD_CHART",
	event.DeleteChart:   "DELETE_CHART",
}

func harborBody(ev event.Event, m Meta) harborPayload {
	t := HarborTypes[ev.Action]
	if t == "" {
		t = strings.ToUpper(string(ev.Action))
	}
	return harborPayload{Type: t, OccurAt: occurred(ev, m).Unix(), Operator: ev.Operator, EventData: harborParts(ev, m)}
}

// --- acr: the Aliyun Container Registry body ------------------------------------

// aliyunZone is the zone of Aliyun's zone-less timestamps (see docs/registries.md).
var aliyunZone = time.FixedZone("CST", 8*3600)

const aliyunTime = "2006-01-02 15:04:05"

type acrPayload struct {
	// Action is set only for actions other than pushImage: Aliyun itself
	// sends pushes only, and its body has no field that says what happened.
	Action     event.Action  `json:"action,omitempty"`
	PushData   acrPushData   `json:"push_data"`
	Repository acrRepository `json:"repository"`
}

type acrPushData struct {
	Digest   string `json:"digest"`
	PushedAt string `json:"pushed_at"`
	Tag      string `json:"tag"`
}

type acrRepository struct {
	DateCreated            string `json:"date_created"`
	Name                   string `json:"name"`
	Namespace              string `json:"namespace"`
	Region                 string `json:"region"`
	RepoAuthenticationType string `json:"repo_authentication_type"`
	RepoFullName           string `json:"repo_full_name"`
	RepoOriginType         string `json:"repo_origin_type"`
	RepoType               string `json:"repo_type"`
}

func acrBody(ev event.Event, m Meta) acrPayload {
	p := acrPayload{
		PushData: acrPushData{Digest: ev.Digest, PushedAt: occurred(ev, m).In(aliyunZone).Format(aliyunTime), Tag: ev.Tag},
		Repository: acrRepository{
			Name: ev.Repository, Namespace: ev.Namespace, Region: aliyunRegion(ev.Registry),
			RepoFullName: ev.FullName(),
		},
	}
	if ev.Action != event.PushImage {
		p.Action = ev.Action
	}
	return p
}

// aliyunRegion reads the region from an Aliyun registry host:
// registry.<region>.aliyuncs.com (also registry-vpc., registry-intl.) or
// <instance>-registry.<region>.cr.aliyuncs.com. A port is ignored; any
// other host gives "".
func aliyunRegion(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	rest, ok := strings.CutSuffix(host, ".aliyuncs.com")
	if !ok {
		return ""
	}
	rest = strings.TrimSuffix(rest, ".cr")
	labels := strings.Split(rest, ".")
	if len(labels) < 2 {
		return ""
	}
	return labels[len(labels)-1]
}

// --- cloudevents: CloudEvents 1.0, structured mode -------------------------------

// CloudEventTypes maps actions to CloudEvents types.
var CloudEventTypes = map[event.Action]string{
	event.PushImage:     "io.regtrigger.image.pushed",
	event.PullImage:     "io.regtrigger.image.pulled",
	event.DeleteImage:   "io.regtrigger.image.deleted",
	event.UploadChart:   "io.regtrigger.chart.uploaded",
	event.DownloadChart: "io.regtrigger.chart.downloaded",
	event.DeleteChart:   "io.regtrigger.chart.deleted",
}

type cloudEventPayload struct {
	SpecVersion     string         `json:"specversion"`
	ID              string         `json:"id"`
	Source          string         `json:"source"`
	Type            string         `json:"type"`
	Subject         string         `json:"subject,omitempty"` // optional; never ""
	Time            string         `json:"time"`
	DataContentType string         `json:"datacontenttype"`
	Data            cloudEventData `json:"data"`
}

type cloudEventData struct {
	event.Event
	Trigger string `json:"trigger"`
	// Events are a coalesced delivery's events, the one above included.
	Events []event.Event `json:"events,omitempty"`
}

func cloudEvent(ev event.Event, m Meta) cloudEventPayload {
	t := CloudEventTypes[ev.Action]
	if t == "" {
		t = "io.regtrigger." + string(ev.Action)
	}
	subject := ev.FullName()
	if ev.Tag != "" {
		subject += ":" + ev.Tag
	} else if ev.Digest != "" {
		subject += "@" + ev.Digest
	}
	// A relative URI-reference, as the spec allows; the source name is
	// escaped so that the attribute stays a valid URI-reference.
	source := "regtrigger/" + url.PathEscape(ev.Source)
	if ev.Source == "" {
		source = "regtrigger"
	}
	ev.OccurredAt = occurred(ev, m)
	return cloudEventPayload{
		SpecVersion: "1.0", ID: m.TaskID, Source: source, Type: t, Subject: subject,
		Time: ev.OccurredAt.Format(time.RFC3339Nano), DataContentType: ContentTypeJSON,
		Data: cloudEventData{Event: ev, Trigger: m.Trigger, Events: coalesced(m)},
	}
}
