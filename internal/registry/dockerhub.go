package registry

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Docker Hub sends tag pushes only, without a digest:
// {"callback_url", "push_data": {pushed_at, pusher, tag}, "repository": {name, namespace, repo_name, ...}}.

type dockerHubBody struct {
	PushData   *dockerHubPushData   `json:"push_data"`
	Repository *dockerHubRepository `json:"repository"`
}

type dockerHubPushData struct {
	PushedAt json.RawMessage `json:"pushed_at"`
	Pusher   string          `json:"pusher"`
	Tag      string          `json:"tag"`
}

type dockerHubRepository struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	RepoName  string `json:"repo_name"`
}

var (
	dockerHubBodyFields       = jsonNames[dockerHubBody]()
	dockerHubPushDataFields   = jsonNames[dockerHubPushData]()
	dockerHubRepositoryFields = jsonNames[dockerHubRepository]()
)

func (*dockerHubBody) fields() []string { return dockerHubBodyFields }

func (b *dockerHubBody) decodeField(name string, val json.RawMessage) bool {
	return decodePushEnvelope(name, val, &b.PushData, &b.Repository)
}

// decodePushEnvelope decodes a member of the envelope Docker Hub sends,
// and Aliyun copies: {"push_data": {...}, "repository": {...}}.
func decodePushEnvelope[D, R any, PD decoderPtr[D], PR decoderPtr[R]](name string, val json.RawMessage, pushData **D, repository **R) bool {
	switch name {
	case "push_data":
		return decodePtr[D, PD](val, pushData)
	case "repository":
		return decodePtr[R, PR](val, repository)
	}
	return false
}

func (*dockerHubPushData) fields() []string { return dockerHubPushDataFields }

func (d *dockerHubPushData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "pushed_at":
		d.PushedAt = val
		return true
	case "pusher":
		return decodeString(val, &d.Pusher)
	case "tag":
		return decodeString(val, &d.Tag)
	}
	return false
}

func (*dockerHubRepository) fields() []string { return dockerHubRepositoryFields }

func (r *dockerHubRepository) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &r.Name)
	case "namespace":
		return decodeString(val, &r.Namespace)
	case "repo_name":
		return decodeString(val, &r.RepoName)
	}
	return false
}

func detectDockerHub(t *top, _ http.Header) bool {
	o := t.obj
	return o.has("push_data") && (o.has("callback_url") || objectHas(o.get("repository"), "repo_name"))
}

func parseDockerHub(n Notification, t *top) ([]event.Event, error) {
	const source = "dockerhub"
	var b dockerHubBody
	if err := decodeBody(source, n, t, &b); err != nil {
		return nil, err
	}
	switch {
	case b.PushData == nil:
		return nil, malformed(source, "push_data is missing")
	case b.Repository == nil:
		return nil, malformed(source, "repository is missing")
	case b.PushData.Tag == "":
		return nil, malformed(source, "push_data.tag is missing")
	}
	ns, repo := b.Repository.Namespace, b.Repository.Name
	if (ns == "" || repo == "") && b.Repository.RepoName != "" {
		ns, repo = splitPath(b.Repository.RepoName)
	}
	if ns == "" || repo == "" {
		return nil, malformed(source, "repository.repo_name is missing")
	}
	at, err := unixTime(b.PushData.PushedAt)
	if err != nil {
		return nil, malformed(source, "push_data.pushed_at: %v", err)
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	const host = "docker.io"
	ref := reference(host, ns, repo, b.PushData.Tag, "")
	if full := strings.Trim(b.Repository.RepoName, "/"); full != "" {
		ref = reference(host, "", full, b.PushData.Tag, "")
	}
	return []event.Event{{
		Source: source, Action: event.PushImage, Namespace: ns, Repository: repo, Tag: b.PushData.Tag,
		ResourceURL: ref, OccurredAt: at, Operator: b.PushData.Pusher, Registry: host, Raw: n.Body,
	}}, nil
}
