package registry

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Amazon ECR does not send webhooks: it puts events on the default
// EventBridge bus ("source": "aws.ecr"), and an EventBridge rule delivers
// them to an API destination (this receiver over HTTP) or invokes a Lambda
// function directly with the event as its payload. The envelope is
// {"version", "id", "detail-type", "source", "account", "time", "region",
// "resources", "detail"}; an "ECR Image Action" detail holds action-type
// (PUSH, DELETE), result (SUCCESS, FAILURE), repository-name, image-tag and
// image-digest.

// ecrImageAction is the detail-type of pushes and deletes.
const ecrImageAction = "ECR Image Action"

// ecrIgnored are the other detail-types ECR sends, which fire nothing: scan
// results and settings, pull-through cache, replication and referrer
// actions, and the CloudTrail records a rule on "aws.ecr" also matches.
var ecrIgnored = map[string]bool{
	"ECR Image Scan":                true,
	"ECR Scan Resource Change":      true,
	"ECR Pull Through Cache Action": true,
	"ECR Replication Action":        true,
	"ECR Referrer Action":           true,
	"AWS API Call via CloudTrail":   true,
}

type ecrEnvelope struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Detail     json.RawMessage `json:"detail"`
}

type ecrImageDetail struct {
	Result            string `json:"result"`
	ActionType        string `json:"action-type"`
	RepositoryName    string `json:"repository-name"`
	ImageTag          string `json:"image-tag"`
	ImageDigest       string `json:"image-digest"`
	ManifestMediaType string `json:"manifest-media-type"`
}

var (
	ecrEnvelopeFields    = jsonNames[ecrEnvelope]()
	ecrImageDetailFields = jsonNames[ecrImageDetail]()
)

func (*ecrEnvelope) fields() []string { return ecrEnvelopeFields }

func (e *ecrEnvelope) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "detail-type":
		return decodeString(val, &e.DetailType)
	case "source":
		return decodeString(val, &e.Source)
	case "account":
		return decodeString(val, &e.Account)
	case "time":
		return decodeString(val, &e.Time)
	case "region":
		return decodeString(val, &e.Region)
	case "detail":
		e.Detail = val
		return true
	}
	return false
}

func (*ecrImageDetail) fields() []string { return ecrImageDetailFields }

func (d *ecrImageDetail) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "result":
		return decodeString(val, &d.Result)
	case "action-type":
		return decodeString(val, &d.ActionType)
	case "repository-name":
		return decodeString(val, &d.RepositoryName)
	case "image-tag":
		return decodeString(val, &d.ImageTag)
	case "image-digest":
		return decodeString(val, &d.ImageDigest)
	case "manifest-media-type":
		return decodeString(val, &d.ManifestMediaType)
	}
	return false
}

func detectECR(t *top, _ http.Header) bool {
	o := t.obj
	return o.str("source") == "aws.ecr" && o.has("detail-type")
}

// IsEventBridge reports whether body is an EventBridge event (a top-level
// object with "detail-type", "source" and "detail"), which is what a Lambda
// function invoked directly by an EventBridge rule receives instead of an
// HTTP request. It says nothing about which service sent the event.
func IsEventBridge(body []byte) bool {
	if b := bytes.TrimSpace(body); len(b) == 0 || b[0] != '{' {
		return false
	}
	t, err := decode(body)
	return err == nil && t.obj.has("detail-type", "source", "detail")
}

func parseECR(n Notification, t *top) ([]event.Event, error) {
	const source = "ecr"
	var env ecrEnvelope
	if err := decodeBody(source, n, t, &env); err != nil {
		return nil, err
	}
	// encoding/json also fills a field from a key in another case
	// ("Detail-Type"); EventBridge spells its keys exactly, and IsEventBridge
	// checks them as spelled, so the envelope's keys must be exact too. The
	// body decoded, so it is the object t holds.
	keys := t.obj
	switch {
	case env.DetailType == "" || !keys.has("detail-type"):
		return nil, malformed(source, "detail-type is missing")
	case env.Source != "aws.ecr" || !keys.has("source"):
		return nil, malformed(source, "source is %q, not \"aws.ecr\"", env.Source)
	case ecrIgnored[env.DetailType]:
		return nil, nil
	case env.DetailType != ecrImageAction:
		return nil, unsupported(source, env.DetailType)
	}
	if d := bytes.TrimSpace(env.Detail); len(d) == 0 || string(d) == "null" || !keys.has("detail") {
		return nil, malformed(source, "detail is missing")
	}
	var d ecrImageDetail
	if err := decodeAt(source, "detail", env.Detail, &d); err != nil {
		return nil, err
	}
	var action event.Action
	switch d.ActionType {
	case "PUSH":
		action = event.PushImage
	case "DELETE":
		action = event.DeleteImage
	case "":
		return nil, malformed(source, "detail.action-type is missing")
	default:
		return nil, unsupported(source, ecrImageAction+"/"+d.ActionType)
	}
	switch d.Result {
	case "SUCCESS":
	case "FAILURE":
		// A push or delete that did not happen: nothing changed.
		return nil, nil
	case "":
		return nil, malformed(source, "detail.result is missing")
	default:
		return nil, malformed(source, "detail.result %q is neither SUCCESS nor FAILURE", d.Result)
	}
	repository := strings.Trim(d.RepositoryName, "/")
	switch {
	case repository == "":
		return nil, malformed(source, "detail.repository-name is missing")
	case action == event.PushImage && d.ImageTag == "":
		// An untagged manifest (a platform manifest of a multi-arch push),
		// as Distribution does.
		return nil, nil
	case d.ImageTag == "" && d.ImageDigest == "":
		return nil, malformed(source, "detail has neither image-tag nor image-digest")
	}
	host, err := ecrHost(env.Account, env.Region)
	if err != nil {
		return nil, err
	}
	at, err := rfc3339Time(env.Time)
	if err != nil {
		return nil, malformed(source, "time: %v", err)
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	ns, repo := splitPath(repository)
	return []event.Event{{
		Source: source, Action: action, Namespace: ns, Repository: repo, Tag: d.ImageTag, Digest: d.ImageDigest,
		ResourceURL: reference(host, "", repository, d.ImageTag, d.ImageDigest),
		OccurredAt:  at, MediaType: d.ManifestMediaType, Registry: host, Raw: n.Body,
	}}, nil
}

// ecrHost builds the registry host <account>.dkr.ecr.<region>.amazonaws.com
// (amazonaws.com.cn in the China regions). Both parts go into a host name,
// so they are checked: an account id is digits, a region letters, digits
// and '-'.
func ecrHost(account, region string) (string, error) {
	const source = "ecr"
	switch {
	case account == "":
		return "", malformed(source, "account is missing")
	case strings.Trim(account, "0123456789") != "":
		return "", malformed(source, "account %q is not an AWS account id (digits)", account)
	case region == "":
		return "", malformed(source, "region is missing")
	case !validRegion(region):
		return "", malformed(source, "region %q is not a region name (lowercase letters, digits and '-')", region)
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return account + ".dkr.ecr." + region + "." + domain, nil
}
