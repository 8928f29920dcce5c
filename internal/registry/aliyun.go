package registry

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Aliyun (Alibaba Cloud) Container Registry sends pushes only:
// {"push_data": {digest, pushed_at, tag}, "repository": {name, namespace, region, ...}}.

// aliyunZone is the zone assumed for Aliyun's zone-less timestamps: China
// Standard Time, UTC+8, the zone of Aliyun's console. A fixed zone needs no
// tzdata (and China has no daylight saving time).
var aliyunZone = time.FixedZone("CST", 8*3600)

const aliyunTimeLayout = "2006-01-02 15:04:05"

type aliyunBody struct {
	PushData   *aliyunPushData   `json:"push_data"`
	Repository *aliyunRepository `json:"repository"`
}

type aliyunPushData struct {
	Digest   string `json:"digest"`
	PushedAt string `json:"pushed_at"`
	Tag      string `json:"tag"`
}

type aliyunRepository struct {
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	Region       string `json:"region"`
	RepoFullName string `json:"repo_full_name"`
}

var (
	aliyunBodyFields       = jsonNames[aliyunBody]()
	aliyunPushDataFields   = jsonNames[aliyunPushData]()
	aliyunRepositoryFields = jsonNames[aliyunRepository]()
)

func (*aliyunBody) fields() []string { return aliyunBodyFields }

func (b *aliyunBody) decodeField(name string, val json.RawMessage) bool {
	return decodePushEnvelope(name, val, &b.PushData, &b.Repository)
}

func (*aliyunPushData) fields() []string { return aliyunPushDataFields }

func (d *aliyunPushData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "digest":
		return decodeString(val, &d.Digest)
	case "pushed_at":
		return decodeString(val, &d.PushedAt)
	case "tag":
		return decodeString(val, &d.Tag)
	}
	return false
}

func (*aliyunRepository) fields() []string { return aliyunRepositoryFields }

func (r *aliyunRepository) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &r.Name)
	case "namespace":
		return decodeString(val, &r.Namespace)
	case "region":
		return decodeString(val, &r.Region)
	case "repo_full_name":
		return decodeString(val, &r.RepoFullName)
	}
	return false
}

func detectACR(t *top, _ http.Header) bool {
	o := t.obj
	return o.has("push_data", "repository") && objectHas(o.get("repository"), "region")
}

func parseACR(n Notification, t *top) ([]event.Event, error) {
	const source = "acr"
	var b aliyunBody
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
	r := b.Repository
	ns, repo := r.Namespace, r.Name
	if (ns == "" || repo == "") && r.RepoFullName != "" {
		ns, repo = splitPath(r.RepoFullName)
	}
	if ns == "" || repo == "" {
		return nil, malformed(source, "repository.namespace and repository.name are missing")
	}
	at := n.ReceivedAt.UTC()
	if s := b.PushData.PushedAt; s != "" {
		t, err := time.ParseInLocation(aliyunTimeLayout, s, aliyunZone)
		if err != nil {
			return nil, malformed(source, "push_data.pushed_at %q is not \"YYYY-MM-DD HH:MM:SS\"", s)
		}
		if at, err = inRange(s, t); err != nil {
			return nil, malformed(source, "push_data.pushed_at: %v", err)
		}
	}
	// The registry host is not in the body; the region gives it
	// (registry.cn-hangzhou.aliyuncs.com). A forced body without a region
	// gets no host.
	host := ""
	if r.Region != "" {
		region := strings.ToLower(r.Region)
		if !validRegion(region) {
			return nil, malformed(source, "repository.region %q is not a region name (letters, digits and '-')", r.Region)
		}
		host = "registry." + region + ".aliyuncs.com"
	}
	return []event.Event{{
		Source: source, Action: event.PushImage, Namespace: ns, Repository: repo, Tag: b.PushData.Tag,
		Digest: b.PushData.Digest, ResourceURL: reference(host, ns, repo, b.PushData.Tag, ""),
		OccurredAt: at, Registry: host, Raw: n.Body,
	}}, nil
}

// validRegion reports whether s looks like an Aliyun region id (cn-hangzhou,
// ap-southeast-1), so it can go into a host name.
func validRegion(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
