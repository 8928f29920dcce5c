package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/regtrigger/regtrigger/internal/event"
)

// JFrog Artifactory's predefined webhooks send {"domain", "event_type",
// "data", ...}; the envelope may add "subscription_key", "jpd_origin" (the
// platform's base URL) and "source". Domain "docker" has the events pushed,
// deleted and promoted, whose data names the Artifactory repository
// (repo_key), the image (image_name) and the tag, and the sha256 of the
// tag's manifest file. There is no time in the body.

// jfrogDockerActions map the docker domain's events. A promotion copies or
// moves a tag into another repository; data.repo_key is read as the
// repository it arrives in, so it is a push there.
var jfrogDockerActions = map[string]event.Action{
	"pushed":   event.PushImage,
	"deleted":  event.DeleteImage,
	"promoted": event.PushImage,
}

type jfrogBody struct {
	Domain    string     `json:"domain"`
	EventType string     `json:"event_type"`
	Data      *jfrogData `json:"data"`
	JPDOrigin string     `json:"jpd_origin"`
	Source    string     `json:"source"`
}

type jfrogData struct {
	RepoKey   string `json:"repo_key"`
	ImageName string `json:"image_name"`
	Tag       string `json:"tag"`
	SHA256    string `json:"sha256"`
}

var (
	jfrogBodyFields = jsonNames[jfrogBody]()
	jfrogDataFields = jsonNames[jfrogData]()
)

func (*jfrogBody) fields() []string { return jfrogBodyFields }

func (b *jfrogBody) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "domain":
		return decodeString(val, &b.Domain)
	case "event_type":
		return decodeString(val, &b.EventType)
	case "data":
		return decodePtr(val, &b.Data)
	case "jpd_origin":
		return decodeString(val, &b.JPDOrigin)
	case "source":
		return decodeString(val, &b.Source)
	}
	return false
}

func (*jfrogData) fields() []string { return jfrogDataFields }

func (d *jfrogData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "repo_key":
		return decodeString(val, &d.RepoKey)
	case "image_name":
		return decodeString(val, &d.ImageName)
	case "tag":
		return decodeString(val, &d.Tag)
	case "sha256":
		return decodeString(val, &d.SHA256)
	}
	return false
}

func detectJFrog(t *top, _ http.Header) bool { return t.obj.has("domain", "event_type", "data") }

func parseJFrog(n Notification, t *top) ([]event.Event, error) {
	const source = "jfrog"
	var b jfrogBody
	if err := decodeBody(source, n, t, &b); err != nil {
		return nil, err
	}
	switch {
	case b.Domain == "":
		return nil, malformed(source, "domain is missing")
	case b.EventType == "":
		return nil, malformed(source, "event_type is missing")
	case b.Domain != "docker":
		// Artifacts, builds, release bundles, ...: nothing regtrigger triggers on.
		return nil, nil
	}
	action, ok := jfrogDockerActions[b.EventType]
	if !ok {
		return nil, unsupported(source, b.Domain+"/"+b.EventType)
	}
	d := b.Data
	switch {
	case d == nil:
		return nil, malformed(source, "data is missing")
	case strings.Trim(d.ImageName, "/") == "":
		return nil, malformed(source, "data.image_name is missing")
	case d.Tag == "":
		return nil, malformed(source, "data.tag is missing")
	}
	image := strings.Trim(d.ImageName, "/")
	ns, repo := splitPath(image)
	host := jfrogHost(b.JPDOrigin)
	// Artifactory serves a Docker repository at <host>/<repo_key>/<image>
	// (its "repository path" method, the default on JFrog Cloud); without
	// jpd_origin the reference is relative to the Artifactory host.
	path := image
	if key := strings.Trim(d.RepoKey, "/"); key != "" {
		path = key + "/" + image
	}
	return []event.Event{{
		Source: source, Action: action, Namespace: ns, Repository: repo, Tag: d.Tag, Digest: jfrogDigest(d.SHA256),
		ResourceURL: reference(host, "", path, d.Tag, ""), OccurredAt: n.ReceivedAt.UTC(),
		Operator: b.Source, Registry: host, Raw: n.Body,
	}}, nil
}

// jfrogHost is the host of jpd_origin ("https://example.jfrog.io"), or ""
// when it is absent or not a URL with a host.
func jfrogHost(origin string) string {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || strings.ContainsAny(u.Host, "@/ ") {
		return ""
	}
	return strings.ToLower(u.Host)
}

// jfrogDigest turns the bare hex sha256 of the manifest file into a digest
// ("sha256:<hex>": a manifest's digest is the sha256 of its bytes). A value
// that is not 64 hex digits (the documentation's "sample_checksum") is kept
// as sent.
func jfrogDigest(sum string) string {
	if len(sum) == 64 && isHex(sum) {
		return "sha256:" + strings.ToLower(sum)
	}
	return sum
}

// isHex reports whether s is hex digits only.
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdefABCDEF") == ""
}
