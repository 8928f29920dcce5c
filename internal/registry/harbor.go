package registry

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Tencent TCR Enterprise is built on Harbor and sends the Harbor 1.x body;
// Harbor 2 sends the same envelope with UPPER_SNAKE types (the "default"
// format) or a CloudEvents 1.0 structured body (2.8+).

// harborActions maps the event types that fire triggers.
var harborActions = map[string]event.Action{
	// Harbor 1.x and TCR.
	"pushImage":     event.PushImage,
	"pullImage":     event.PullImage,
	"deleteImage":   event.DeleteImage,
	"uploadChart":   event.UploadChart,
	"downloadChart": event.DownloadChart,
	"deleteChart":   event.DeleteChart,
	// Harbor 2.x default format.
	"PUSH_ARTIFACT":   event.PushImage,
	"PULL_ARTIFACT":   event.PullImage,
	"DELETE_ARTIFACT": event.DeleteImage,
	"UPLOAD_CHART":    event.UploadChart,
	"DOWNLOAD_CHART":  event.DownloadChart,
	"DELETE_CHART":    event.DeleteChart,
	// Harbor 2.8+ CloudEvents format.
	"harbor.artifact.pushed":  event.PushImage,
	"harbor.artifact.pulled":  event.PullImage,
	"harbor.artifact.deleted": event.DeleteImage,
}

// harborIgnored are event types Harbor and TCR send that fire no trigger
// (yet): scans, quotas, replication, retention, the test ping.
var harborIgnored = map[string]bool{
	"scanningCompleted": true, "scanningFailed": true, "scanningStopped": true, "projectQuota": true,
	"testEndpoint": true, "replication": true, "tagRetention": true,
	"SCANNING_COMPLETED": true, "SCANNING_FAILED": true, "SCANNING_STOPPED": true, "QUOTA_EXCEED": true,
	"QUOTA_WARNING": true, "REPLICATION": true, "TAG_RETENTION": true,
	"harbor.scan.completed": true, "harbor.scan.failed": true, "harbor.scan.stopped": true,
	"harbor.quota.exceeded": true, "harbor.quota.warned": true, "harbor.replication.status.changed": true,
	"harbor.tag_retention.finished": true,
}

type harborEnvelope struct {
	Type      string          `json:"type"`
	OccurAt   json.RawMessage `json:"occur_at"`
	Operator  string          `json:"operator"`
	EventData *harborData     `json:"event_data"`
}

type harborData struct {
	Resources  []harborResource `json:"resources"`
	Repository *harborRepo      `json:"repository"`
}

type harborResource struct {
	Digest      string `json:"digest"`
	Tag         string `json:"tag"`
	ResourceURL string `json:"resource_url"`
}

type harborRepo struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	RepoFullName string `json:"repo_full_name"`
}

var (
	harborEnvelopeFields   = jsonNames[harborEnvelope]()
	harborDataFields       = jsonNames[harborData]()
	harborResourceFields   = jsonNames[harborResource]()
	harborRepoFields       = jsonNames[harborRepo]()
	harborCloudEventFields = jsonNames[harborCloudEvent]()
)

func (*harborEnvelope) fields() []string { return harborEnvelopeFields }

func (e *harborEnvelope) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "type":
		return decodeString(val, &e.Type)
	case "occur_at":
		e.OccurAt = val
		return true
	case "operator":
		return decodeString(val, &e.Operator)
	case "event_data":
		return decodePtr(val, &e.EventData)
	}
	return false
}

func (*harborData) fields() []string { return harborDataFields }

func (d *harborData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "resources":
		return decodeSlice(val, &d.Resources)
	case "repository":
		return decodePtr(val, &d.Repository)
	}
	return false
}

func (*harborResource) fields() []string { return harborResourceFields }

func (r *harborResource) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "digest":
		return decodeString(val, &r.Digest)
	case "tag":
		return decodeString(val, &r.Tag)
	case "resource_url":
		return decodeString(val, &r.ResourceURL)
	}
	return false
}

func (*harborRepo) fields() []string { return harborRepoFields }

func (r *harborRepo) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &r.Name)
	case "namespace":
		return decodeString(val, &r.Namespace)
	case "repo_full_name":
		return decodeString(val, &r.RepoFullName)
	}
	return false
}

func harborShape(o object) bool { return o.has("type", "occur_at", "event_data") }

// detectTCR: the Harbor 1.x shape sent by a Tencent registry (its resource
// URLs are on *.tencentcloudcr.com).
func detectTCR(t *top, _ http.Header) bool {
	if !harborShape(t.obj) {
		return false
	}
	d, ok := harborEventData(t)
	if !ok || d == nil {
		return false
	}
	for _, r := range d.Resources {
		h := strings.ToLower(hostOf(r.ResourceURL))
		if i := strings.IndexByte(h, ':'); i >= 0 {
			h = h[:i]
		}
		if strings.HasSuffix(h, ".tencentcloudcr.com") || strings.HasSuffix(h, ".tencentcloudcr.com.") {
			return true
		}
	}
	return false
}

func detectHarbor(t *top, _ http.Header) bool { return harborShape(t.obj) }

// harborEventData returns the body's event_data decoded (nil when it is
// null); ok is false when it does not decode. When the fast path decodes
// the whole envelope, as parsing the body does, t keeps it for the parser.
func harborEventData(t *top) (d *harborData, ok bool) {
	if env := new(harborEnvelope); t.body != nil && decodeMembers(t.obj, env) {
		t.harbor = env
		return env.EventData, true
	}
	// Only whether it decodes matters here, not what an error would say.
	d = new(harborData)
	if decodeAt("tcr", "event_data", t.obj.get("event_data"), d) != nil {
		return nil, false
	}
	return d, true
}

func parseTCR(n Notification, t *top) ([]event.Event, error) {
	return parseHarborDefault("tcr", n, t)
}

func parseHarbor(n Notification, t *top) ([]event.Event, error) {
	return parseHarborDefault("harbor", n, t)
}

func parseHarborDefault(source string, n Notification, t *top) ([]event.Event, error) {
	env := t.harbor // decoded by detectTCR
	if env == nil {
		env = new(harborEnvelope)
		if err := decodeBody(source, n, t, env); err != nil {
			return nil, err
		}
	}
	if env.Type == "" {
		return nil, malformed(source, "type is missing")
	}
	at, err := unixTime(env.OccurAt)
	if err != nil {
		return nil, malformed(source, "occur_at: %v", err)
	}
	return harborEvents(source, n, env.Type, at, env.Operator, "event_data", env.EventData)
}

// harborEvents makes one event per resource. field names the data object in
// error messages: "event_data" (default format) or "data" (CloudEvents).
func harborEvents(source string, n Notification, typ string, at time.Time, operator, field string, d *harborData) ([]event.Event, error) {
	if harborIgnored[typ] {
		return nil, nil
	}
	action, ok := harborActions[typ]
	if !ok {
		return nil, unsupported(source, typ)
	}
	if d == nil {
		return nil, malformed(source, "%s is missing", field)
	}
	if d.Repository == nil {
		return nil, malformed(source, "%s.repository is missing", field)
	}
	ns, repo := d.Repository.Namespace, d.Repository.Name
	full := strings.Trim(d.Repository.RepoFullName, "/")
	if ns == "" && full != "" {
		ns, _, _ = strings.Cut(full, "/")
	}
	if repo == "" && ns != "" {
		repo = strings.TrimPrefix(full, ns+"/")
		if repo == full {
			repo = ""
		}
	}
	switch {
	case ns == "":
		return nil, malformed(source, "%s.repository.namespace is missing", field)
	case repo == "":
		return nil, malformed(source, "%s.repository.name is missing", field)
	case len(d.Resources) == 0:
		return nil, malformed(source, "%s.resources is empty: no tag or digest to report", field)
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	evs := make([]event.Event, 0, len(d.Resources))
	for i, r := range d.Resources {
		tag := r.Tag
		// An artifact pushed by digest is reported with the digest as its
		// tag; a real tag cannot contain ':'.
		if strings.HasPrefix(tag, "sha256:") || (tag != "" && tag == r.Digest) {
			tag = ""
		}
		switch {
		case action.IsChart() && tag == "":
			// Charts are named by version (the "tag"); they have no digest.
			return nil, malformed(source, "%s.resources[%d].tag (the chart version) is missing", field, i)
		case tag == "" && r.Digest == "":
			return nil, malformed(source, "%s.resources[%d] has neither tag nor digest", field, i)
		}
		evs = append(evs, event.Event{
			Source: source, Action: action, Namespace: ns, Repository: repo, Tag: tag, Digest: r.Digest,
			ResourceURL: r.ResourceURL, OccurredAt: at, Operator: operator, Registry: hostOf(r.ResourceURL), Raw: n.Body,
		})
	}
	return evs, nil
}

// Harbor 2.8+ CloudEvents (structured mode).

type harborCloudEvent struct {
	SpecVersion string      `json:"specversion"`
	Type        string      `json:"type"`
	Time        string      `json:"time"`
	Operator    string      `json:"operator"`
	Data        *harborData `json:"data"`
}

func detectHarborCloudEvents(t *top, _ http.Header) bool {
	o := t.obj
	return o.has("specversion", "type") && strings.HasPrefix(o.str("type"), "harbor.")
}

func (*harborCloudEvent) fields() []string { return harborCloudEventFields }

func (ce *harborCloudEvent) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "specversion":
		return decodeString(val, &ce.SpecVersion)
	case "type":
		return decodeString(val, &ce.Type)
	case "time":
		return decodeString(val, &ce.Time)
	case "operator":
		return decodeString(val, &ce.Operator)
	case "data":
		return decodePtr(val, &ce.Data)
	}
	return false
}

func parseHarborCloudEvents(n Notification, t *top) ([]event.Event, error) {
	const source = "harbor"
	var ce harborCloudEvent
	if err := decodeBody(source, n, t, &ce); err != nil {
		return nil, err
	}
	if ce.SpecVersion == "" || ce.Type == "" {
		return nil, malformed(source, "a CloudEvent needs specversion and type")
	}
	at, err := rfc3339Time(ce.Time)
	if err != nil {
		return nil, malformed(source, "time: %v", err)
	}
	return harborEvents(source, n, ce.Type, at, ce.Operator, "data", ce.Data)
}
