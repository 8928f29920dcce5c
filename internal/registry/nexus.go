package registry

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Sonatype Nexus Repository 3 sends repository webhooks for components
// (a Docker component is image + tag: name "app1/alpine", version "3.4") and
// for assets (the stored files: v2/<image>/manifests/<tag>, blobs, ...),
// with action CREATED, UPDATED or DELETED. The kind of event is only in the
// X-Nexus-Webhook-Id header (rm:repository:component, rm:repository:asset;
// global webhooks send rm:global:repository and rm:global:audit). Bodies
// carry "repositoryName" (the Nexus repository), "timestamp"
// ("2020-04-05T21:49:44.219+0000") and "initiator" ("admin/127.0.0.1").

// nexusIDHeader names the kind of a Nexus webhook.
const nexusIDHeader = "X-Nexus-Webhook-Id"

const (
	nexusComponent = "rm:repository:component"
	nexusAsset     = "rm:repository:asset"
)

// nexusIgnored are the other webhook kinds Nexus sends: repository
// configuration changes and the audit log.
var nexusIgnored = map[string]bool{
	"rm:repository": true, "rm:audit": true, "rm:global:repository": true, "rm:global:audit": true,
}

type nexusBody struct {
	Timestamp      string              `json:"timestamp"`
	Initiator      string              `json:"initiator"`
	RepositoryName string              `json:"repositoryName"`
	Action         string              `json:"action"`
	Component      *nexusComponentData `json:"component"`
	Asset          *nexusAssetData     `json:"asset"`
}

type nexusComponentData struct {
	Format  string `json:"format"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

type nexusAssetData struct {
	Format string `json:"format"`
	Name   string `json:"name"`
}

var (
	nexusBodyFields      = jsonNames[nexusBody]()
	nexusComponentFields = jsonNames[nexusComponentData]()
	nexusAssetFields     = jsonNames[nexusAssetData]()
)

func (*nexusBody) fields() []string { return nexusBodyFields }

func (b *nexusBody) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "timestamp":
		return decodeString(val, &b.Timestamp)
	case "initiator":
		return decodeString(val, &b.Initiator)
	case "repositoryName":
		return decodeString(val, &b.RepositoryName)
	case "action":
		return decodeString(val, &b.Action)
	case "component":
		return decodePtr(val, &b.Component)
	case "asset":
		return decodePtr(val, &b.Asset)
	}
	return false
}

func (*nexusComponentData) fields() []string { return nexusComponentFields }

func (c *nexusComponentData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "format":
		return decodeString(val, &c.Format)
	case "name":
		return decodeString(val, &c.Name)
	case "version":
		return decodeString(val, &c.Version)
	}
	return false
}

func (*nexusAssetData) fields() []string { return nexusAssetFields }

func (a *nexusAssetData) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "format":
		return decodeString(val, &a.Format)
	case "name":
		return decodeString(val, &a.Name)
	}
	return false
}

// detectNexus: Nexus's webhook header, or the body of a component or asset
// webhook.
func detectNexus(t *top, h http.Header) bool {
	o := t.obj
	if h.Get(nexusIDHeader) != "" {
		return true
	}
	return o.has("nodeId", "repositoryName") && (o.has("component") || o.has("asset"))
}

func parseNexus(n Notification, t *top) ([]event.Event, error) {
	const source = "nexus"
	var b nexusBody
	if err := decodeBody(source, n, t, &b); err != nil {
		return nil, err
	}
	kind := strings.TrimSpace(n.Header.Get(nexusIDHeader))
	if kind == "" {
		switch {
		case b.Component != nil:
			kind = nexusComponent
		case b.Asset != nil:
			kind = nexusAsset
		default:
			return nil, malformed(source, "no %s header, and neither component nor asset is in the body", nexusIDHeader)
		}
	}
	if nexusIgnored[kind] {
		return nil, nil
	}
	if kind != nexusComponent && kind != nexusAsset {
		return nil, unsupported(source, kind)
	}
	var action event.Action
	switch b.Action {
	case "CREATED":
		action = event.PushImage
	case "DELETED":
		action = event.DeleteImage
	case "UPDATED":
		// Nexus updates stored records for bookkeeping too (an asset's
		// last-downloaded time changes on a pull), so an update is not
		// taken for a push.
		return nil, nil
	case "":
		return nil, malformed(source, "action is missing")
	default:
		return nil, unsupported(source, kind+"/"+b.Action)
	}

	var image, tag, digest string
	if kind == nexusComponent {
		c := b.Component
		switch {
		case c == nil:
			return nil, malformed(source, "component is missing")
		case !strings.EqualFold(c.Format, "docker"):
			return nil, nil // maven2, npm, raw, ...
		case strings.Trim(c.Name, "/") == "":
			return nil, malformed(source, "component.name is missing")
		case c.Version == "":
			return nil, malformed(source, "component.version (the tag) is missing")
		}
		image, tag = strings.Trim(c.Name, "/"), c.Version
	} else {
		a := b.Asset
		switch {
		case a == nil:
			return nil, malformed(source, "asset is missing")
		case !strings.EqualFold(a.Format, "docker"):
			return nil, nil
		case a.Name == "":
			return nil, malformed(source, "asset.name is missing")
		}
		var ref string
		var ok bool
		image, ref, ok = nexusManifest(a.Name)
		if !ok {
			return nil, nil // blobs, upload sessions, ...
		}
		if strings.Contains(ref, ":") {
			digest = ref
		} else {
			tag = ref
		}
		if action == event.PushImage && tag == "" {
			return nil, nil // an untagged manifest, as Distribution does
		}
	}

	at, err := nexusTime(b.Timestamp)
	if err != nil {
		return nil, malformed(source, "timestamp: %v", err)
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	// The initiator is "<user>/<client address>".
	operator := b.Initiator
	if i := strings.LastIndexByte(operator, '/'); i >= 0 {
		operator = operator[:i]
	}
	ns, repo := splitPath(image)
	// Docker clients reach a Nexus repository through its connector port or
	// subdomain, which the body does not name: the reference is relative
	// to that host.
	return []event.Event{{
		Source: source, Action: action, Namespace: ns, Repository: repo, Tag: tag, Digest: digest,
		ResourceURL: reference("", "", image, tag, digest), OccurredAt: at, Operator: operator, Raw: n.Body,
	}}, nil
}

// nexusManifest reads a Docker asset path "v2/<image>/manifests/<reference>";
// ok is false for every other asset.
func nexusManifest(name string) (image, ref string, ok bool) {
	p := strings.TrimPrefix(strings.Trim(name, "/"), "v2/")
	i := strings.LastIndex(p, "/manifests/")
	if i <= 0 {
		return "", "", false
	}
	image, ref = strings.Trim(p[:i], "/"), p[i+len("/manifests/"):]
	if image == "" || image == "-" || ref == "" || strings.Contains(ref, "/") {
		return "", "", false
	}
	return image, ref, true
}

// nexusTime reads Nexus's "2020-04-05T21:49:44.219+0000" (a numeric zone
// without a colon, which RFC 3339 does not allow), or RFC 3339.
func nexusTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02T15:04:05Z0700", s)
	if err != nil {
		return rfc3339Time(s)
	}
	return inRange(s, t)
}
