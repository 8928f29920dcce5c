package registry

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// Tests of the formats added with Quay, Azure, ECR, GHCR, JFrog, Nexus and
// Google: the decisions the goldens encode, errors, arrays and fuzz targets.

// hdr builds a header from name/value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// parseOK parses a body that must parse, with the source detected.
func parseOK(t *testing.T, b []byte, h http.Header) []event.Event {
	t.Helper()
	evs, err := Parse(Notification{Body: b, Header: h, ReceivedAt: receivedAt}, "")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkEvents(t, "", b, evs, nil)
	return evs
}

// one parses a body that must give exactly one event.
func one(t *testing.T, b []byte, h http.Header) event.Event {
	t.Helper()
	evs := parseOK(t, b, h)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	return evs[0]
}

// none parses a body that must be recognised as source and give no event.
func none(t *testing.T, source string, b []byte, h http.Header) {
	t.Helper()
	if evs := parseOK(t, b, h); len(evs) != 0 {
		t.Fatalf("%d events, want none: %+v", len(evs), evs)
	}
	if got, err := Detect(Notification{Body: b, Header: h}); got != source || err != nil {
		t.Fatalf("Detect = %q, %v; want %q", got, err, source)
	}
}

// replace returns a fixture body with old replaced by new once.
func replace(t *testing.T, file, old, new string) []byte {
	t.Helper()
	b := body(t, file)
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSemanticsQuay(t *testing.T) {
	t.Run("repository from the full name, not the documented name field", func(t *testing.T) {
		e := one(t, body(t, "quay/repo_push.json"), nil)
		if e.Source != "quay" || e.Namespace != "dgangaia" || e.Repository != "test" || e.Tag != "latest" ||
			e.ResourceURL != "quay.io/dgangaia/test:latest" || e.Registry != "quay.io" || e.Digest != "" || !e.OccurredAt.Equal(receivedAt) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("2013 object of tags, in body order", func(t *testing.T) {
		evs := parseOK(t, []byte(`{"docker_url":"quay.io/a/b","namespace":"a","repository":"a/b","updated_tags":{"z":"1","latest":"2"}}`), nil)
		if len(evs) != 2 || evs[0].Tag != "z" || evs[1].Tag != "latest" || evs[1].ResourceURL != "quay.io/a/b:latest" {
			t.Errorf("%+v", evs)
		}
	})
	t.Run("one event per tag", func(t *testing.T) {
		evs := parseOK(t, []byte(`{"docker_url":"quay.example.com:8443/org/team/app","namespace":"org","repository":"org/team/app","updated_tags":["v1","v2"]}`), nil)
		if len(evs) != 2 || evs[0].Repository != "team/app" || evs[1].Tag != "v2" || evs[1].Registry != "quay.example.com:8443" ||
			evs[1].ResourceURL != "quay.example.com:8443/org/team/app:v2" {
			t.Errorf("%+v", evs)
		}
	})
	t.Run("names from docker_url and name when repository is absent", func(t *testing.T) {
		e := one(t, []byte(`{"docker_url":"quay.io/ns/app","name":"app","namespace":"ns","updated_tags":["t"]}`), nil)
		if e.Namespace != "ns" || e.Repository != "app" {
			t.Errorf("%+v", e)
		}
	})
}

func TestSemanticsAzure(t *testing.T) {
	t.Run("webhook push", func(t *testing.T) {
		e := one(t, body(t, "azure-acr/push.json"), nil)
		if e.Source != "azure" || e.Action != event.PushImage || e.Namespace != "library" || e.Repository != "hello-world" || e.Tag != "v1" ||
			e.Registry != "myregistry.azurecr.io" || e.ResourceURL != "myregistry.azurecr.io/hello-world:v1" ||
			!e.OccurredAt.Equal(time.Date(2017, 11, 17, 16, 52, 1, 343145347, time.UTC)) || e.MediaType != "application/vnd.docker.distribution.manifest.v2+json" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("non-canonical digest carried as sent", func(t *testing.T) {
		e := one(t, body(t, "azure-acr/push-redacted-current-doc.json"), nil)
		if e.Digest != "sha256:xxxxd5c8786bb9e621a45ece0dbxxxx1cdc624ad20da9fe62e9d25490f33xxxx" {
			t.Errorf("digest %q", e.Digest)
		}
	})
	t.Run("delete by digest", func(t *testing.T) {
		e := one(t, body(t, "azure-acr/delete.json"), nil)
		if e.Action != event.DeleteImage || e.Tag != "" || !strings.HasSuffix(e.ResourceURL, "/hello-world@"+e.Digest) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("chart: helm repository is the namespace, .tgz dropped from the version", func(t *testing.T) {
		e := one(t, body(t, "azure-acr/chart_push.json"), nil)
		if e.Action != event.UploadChart || e.Namespace != "repo" || e.Repository != "wordpress" || e.Tag != "5.4.0" || e.ResourceURL != "" {
			t.Errorf("%+v", e)
		}
		if e := one(t, body(t, "azure-acr/chart_delete.json"), nil); e.Action != event.DeleteChart {
			t.Errorf("%+v", e)
		}
	})
	t.Run("nested repository is split", func(t *testing.T) {
		e := one(t, []byte(`{"action":"push","target":{"repository":"team/sub/app","tag":"v1"},"request":{"host":"r.azurecr.io"}}`), nil)
		if e.Namespace != "team" || e.Repository != "sub/app" || e.ResourceURL != "r.azurecr.io/team/sub/app:v1" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("quarantine, ping and untagged pushes fire nothing", func(t *testing.T) {
		none(t, "azure", body(t, "azure-acr/quarantine.json"), nil)
		none(t, "azure", []byte(`{"action":"ping"}`), nil)
		none(t, "azure", []byte(`{"id":"x","timestamp":"2024-01-01T00:00:00Z","action":"ping","request":{"host":"r.azurecr.io"}}`), nil)
		none(t, "azure", []byte(`{"action":"push","target":{"repository":"a","digest":"sha256:1"}}`), nil)
	})
	t.Run("a lone action is not azure", func(t *testing.T) {
		if src, err := Detect(Notification{Body: []byte(`{"action":"ping","zen":"x"}`)}); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%q %v", src, err)
		}
	})
	t.Run("event grid: data string, data time first", func(t *testing.T) {
		e := one(t, body(t, "azure-acr/eventgrid-ImagePushed-eventgridschema.json"), nil)
		if e.Source != "azure" || e.Repository != "ubuntu" || e.Tag != "18.04" || e.Registry != "matellcr.azurecr.io" ||
			!e.OccurredAt.Equal(time.Date(2020, 7, 9, 0, 29, 38, 143428094, time.UTC)) {
			t.Errorf("%+v", e)
		}
		if e := one(t, body(t, "azure-acr/eventgrid-ImagePushed-cloudeventschema.json"), nil); e.Repository != "alpine" || e.Tag != "latest" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("event grid array, data object, event time when data has none", func(t *testing.T) {
		b := []byte(`[
			{"eventType":"Microsoft.ContainerRegistry.ImagePushed","eventTime":"2024-05-06T07:08:09Z","data":{"target":{"repository":"a/b","tag":"v1"},"request":{"host":"r.azurecr.io"}}},
			{"eventType":"Microsoft.ContainerRegistry.ImageDeleted","eventTime":"2024-05-06T07:08:10Z","data":"{\"timestamp\":\"2024-05-06T07:08:11Z\",\"target\":{\"repository\":\"a/b\",\"digest\":\"sha256:2\"}}"},
			{"eventType":"Microsoft.ContainerRegistry.ChartPushed","data":{"target":{"repository":"repo","name":"c","version":"1.0.0"}}}
		]`)
		evs := parseOK(t, b, nil)
		if len(evs) != 3 {
			t.Fatalf("%+v", evs)
		}
		if e := evs[0]; e.Action != event.PushImage || e.Namespace != "a" || !e.OccurredAt.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
			t.Errorf("%+v", e)
		}
		if e := evs[1]; e.Action != event.DeleteImage || e.Digest != "sha256:2" || !e.OccurredAt.Equal(time.Date(2024, 5, 6, 7, 8, 11, 0, time.UTC)) {
			t.Errorf("%+v", e)
		}
		if e := evs[2]; e.Action != event.UploadChart || e.Tag != "1.0.0" || !e.OccurredAt.Equal(receivedAt) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("cloudevents batch", func(t *testing.T) {
		ce := strings.TrimSpace(string(body(t, "azure-acr/eventgrid-ImagePushed-cloudeventschema.json")))
		b := []byte("[" + ce + "," + ce + "]")
		evs := parseOK(t, b, hdr("Content-Type", "application/cloudevents-batch+json"))
		if len(evs) != 2 || evs[1].Tag != "latest" {
			t.Errorf("%+v", evs)
		}
	})
	t.Run("event grid's validation and deletion events fire nothing", func(t *testing.T) {
		none(t, "azure", []byte(`[{"id":"1","eventType":"Microsoft.EventGrid.SubscriptionValidationEvent","data":{"validationCode":"abc"}}]`), nil)
		none(t, "azure", []byte(`{"eventType":"Microsoft.EventGrid.SubscriptionDeletedEvent","data":{}}`), nil)
	})
}

func TestSemanticsECR(t *testing.T) {
	const push = `{"version":"0","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012","time":"2024-01-02T03:04:05Z","region":"%s","resources":[],"detail":%s}`
	ecr := func(region, detail string) []byte {
		return []byte(strings.Replace(strings.Replace(push, "%s", region, 1), "%s", detail, 1))
	}
	t.Run("push", func(t *testing.T) {
		e := one(t, body(t, "aws-ecr/image-action-push.json"), nil)
		if e.Source != "ecr" || e.Action != event.PushImage || e.Namespace != "library" || e.Repository != "my-repository-name" || e.Tag != "latest" ||
			e.Registry != "123456789012.dkr.ecr.us-west-2.amazonaws.com" ||
			e.ResourceURL != "123456789012.dkr.ecr.us-west-2.amazonaws.com/my-repository-name:latest" ||
			e.Digest != "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234" || !e.OccurredAt.Equal(time.Date(2019, 11, 16, 1, 54, 34, 0, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("delete by digest, nested name, China region, media type", func(t *testing.T) {
		e := one(t, ecr("cn-north-1", `{"result":"SUCCESS","repository-name":"team/app","image-digest":"sha256:1","action-type":"DELETE","manifest-media-type":"application/vnd.oci.image.index.v1+json"}`), nil)
		if e.Action != event.DeleteImage || e.Namespace != "team" || e.Repository != "app" || e.Tag != "" ||
			e.ResourceURL != "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/app@sha256:1" || e.MediaType != "application/vnd.oci.image.index.v1+json" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("failures, untagged pushes and scans fire nothing", func(t *testing.T) {
		none(t, "ecr", ecr("us-east-1", `{"result":"FAILURE","repository-name":"a","image-tag":"v1","action-type":"PUSH"}`), nil)
		none(t, "ecr", ecr("us-east-1", `{"result":"SUCCESS","repository-name":"a","image-digest":"sha256:1","action-type":"PUSH"}`), nil)
		for _, f := range []string{"aws-ecr/image-scan-basic.json", "aws-ecr/image-scan-aws-lambda-go.json", "aws-ecr/scan-resource-change-enhanced.json"} {
			none(t, "ecr", body(t, f), nil)
		}
		none(t, "ecr", []byte(`{"detail-type":"AWS API Call via CloudTrail","source":"aws.ecr","detail":{"eventName":"PutImage"}}`), nil)
	})
	t.Run("another service's EventBridge event is not ecr", func(t *testing.T) {
		b := []byte(`{"detail-type":"Object Created","source":"aws.s3","account":"1","region":"us-east-1","detail":{}}`)
		if src, err := Detect(Notification{Body: b}); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%q %v", src, err)
		}
	})
}

func TestIsEventBridge(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bool
	}{
		{"ecr push", string(body(t, "aws-ecr/image-action-push.json")), true},
		{"any service", `{"detail-type":"Object Created","source":"aws.s3","detail":{}}`, true},
		{"leading space", ` {"detail-type":"x","source":"y","detail":null}`, true},
		{"no detail", `{"detail-type":"x","source":"y"}`, false},
		{"function url request", `{"version":"2.0","rawPath":"/v1/notify","headers":{},"body":"{\"detail-type\":1,\"source\":2,\"detail\":3}","requestContext":{}}`, false},
		{"api gateway request", `{"resource":"/","httpMethod":"POST","body":"{}"}`, false},
		{"array", `[{"detail-type":"x","source":"y","detail":{}}]`, false},
		{"not json", `{"detail-type"`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsEventBridge([]byte(tt.body)); got != tt.want {
				t.Errorf("IsEventBridge = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSemanticsGHCR(t *testing.T) {
	pkg := hdr(githubEventHeader, "package")
	t.Run("2021 ghcr create", func(t *testing.T) {
		e := one(t, body(t, "ghcr/package-create-ghcr-real-keel.json"), pkg)
		if e.Source != "ghcr" || e.Action != event.PushImage || e.Namespace != "utaitebox" || e.Repository != "utaitebox-server" || e.Tag != "3.2.1" ||
			e.Digest != "sha256:7d3848ba2f2e7f69bebb4b576e5fad0379b64a0b1512aee6ad0ec9e7c6319fed" || e.ResourceURL != "ghcr.io/utaitebox/utaitebox-server:3.2.1" ||
			e.Operator != "DingGGu" || e.Registry != "ghcr.io" || !e.OccurredAt.Equal(receivedAt) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("2019 registry_package: the version is the tag", func(t *testing.T) {
		e := one(t, body(t, "ghcr/registry_package-published-real-keel-2019.json"), hdr(githubEventHeader, "registry_package"))
		if e.Namespace != "dingggu" || e.Repository != "server" || e.Tag != "1.2.3" || e.Digest != "" || !e.OccurredAt.Equal(time.Date(2019, 11, 1, 5, 30, 31, 0, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("untagged version fires nothing; tagged, owner lowercased, digest from the version name", func(t *testing.T) {
		none(t, "ghcr", body(t, "ghcr/package-published-docker-octokit.json"), pkg)
		none(t, "ghcr", body(t, "ghcr/registry_package-published-docker-octokit.json"), nil)
		b := replace(t, "ghcr/package-published-docker-octokit.json", `"name": "",`, `"name": "nightly",`)
		e := one(t, b, pkg)
		if e.Namespace != "codertocat" || e.Repository != "hello-world-npm" || e.Tag != "nightly" || e.Operator != "Codertocat" ||
			e.Digest != "sha256:3da1996a8115d7616457760d9920b815241d0a03b34cf5f04e9a0e9d8de37498" ||
			!e.OccurredAt.Equal(time.Date(2019, 5, 9, 23, 28, 29, 0, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("without the header, the body shape decides", func(t *testing.T) {
		b := replace(t, "ghcr/package-create-ghcr-real-keel.json", `"name": "3.2.1"`, `"name": "3.2.2"`)
		if e := one(t, b, nil); e.Tag != "3.2.2" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("npm packages, updates, pings and other github events fire nothing", func(t *testing.T) {
		npm := []byte(`{"action":"published","package":{"name":"p","ecosystem":"npm","package_type":"npm","owner":{"login":"o"},"package_version":{"version":"1.0.0"}},"sender":{"login":"o"}}`)
		none(t, "ghcr", npm, pkg)
		upd := replace(t, "ghcr/package-create-ghcr-real-keel.json", `"action": "create"`, `"action": "updated"`)
		none(t, "ghcr", upd, pkg)
		none(t, "ghcr", []byte(`{"zen":"Keep it logically awesome.","hook_id":1,"hook":{},"sender":{"login":"o"}}`), hdr(githubEventHeader, "ping"))
		none(t, "ghcr", []byte(`{"ref":"refs/heads/main","sender":{"login":"o"}}`), hdr(githubEventHeader, "push"))
	})
	t.Run("REST-style metadata tags, GHES host from package_url", func(t *testing.T) {
		b := []byte(`{"action":"published","package":{"name":"Team/App","package_type":"CONTAINER","owner":{"login":"Org"},"package_version":{"name":"sha256:1",
			"package_url":"containers.ghe.example.com/org/team/app:v1","metadata":{"container":{"tags":["v1","latest","v1"]}}}},"sender":{"login":"bot"}}`)
		evs := parseOK(t, b, pkg)
		if len(evs) != 2 || evs[0].Tag != "v1" || evs[1].Tag != "latest" || evs[0].Repository != "team/app" || evs[0].Registry != "containers.ghe.example.com" ||
			evs[1].ResourceURL != "containers.ghe.example.com/org/team/app:latest" || evs[0].Digest != "sha256:1" {
			t.Errorf("%+v", evs)
		}
	})
}

func TestSemanticsJFrog(t *testing.T) {
	t.Run("push with the platform's host", func(t *testing.T) {
		e := one(t, body(t, "jfrog-artifactory/docker-pushed.json"), nil)
		if e.Source != "jfrog" || e.Action != event.PushImage || e.Namespace != "library" || e.Repository != "ubuntu" || e.Tag != "latest" ||
			e.Digest != "sha256:35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce" ||
			e.ResourceURL != "example.jfrog.io/docker-remote-cache/library/ubuntu:latest" || e.Registry != "example.jfrog.io" || e.Operator != "jfrog/user@example.com" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("promoted is a push into repo_key; no host: relative reference; odd checksum as sent", func(t *testing.T) {
		e := one(t, body(t, "jfrog-artifactory/docker-promoted-telegraf.json"), nil)
		if e.Action != event.PushImage || e.ResourceURL != "sample_repo/sample_arch:sample_image" || e.Registry != "" || e.Digest != "sample_checksum" {
			t.Errorf("%+v", e)
		}
		if e := one(t, body(t, "jfrog-artifactory/docker-deleted-telegraf.json"), nil); e.Action != event.DeleteImage {
			t.Errorf("%+v", e)
		}
	})
	t.Run("other domains fire nothing", func(t *testing.T) {
		none(t, "jfrog", []byte(`{"domain":"artifact","event_type":"deployed","data":{"repo_key":"r","path":"a/b.jar","name":"b.jar"}}`), nil)
	})
}

func TestSemanticsNexus(t *testing.T) {
	comp := hdr(nexusIDHeader, nexusComponent)
	asset := hdr(nexusIDHeader, nexusAsset)
	assetBody := func(action, name string) []byte {
		return []byte(`{"timestamp":"2024-01-02T03:04:05.678+0100","nodeId":"n","initiator":"ci-bot/10.0.0.1","repositoryName":"docker-hosted","action":"` + action +
			`","asset":{"id":"1","format":"docker","name":"` + name + `"}}`)
	}
	t.Run("docker component", func(t *testing.T) {
		e := one(t, body(t, "nexus/component-created-docker-real-fluxrecv.json"), comp)
		if e.Source != "nexus" || e.Action != event.PushImage || e.Namespace != "app1" || e.Repository != "alpine" || e.Tag != "3.4" ||
			e.Operator != "admin" || e.ResourceURL != "app1/alpine:3.4" || e.Registry != "" || !e.OccurredAt.Equal(time.Date(2020, 4, 5, 21, 49, 44, 219e6, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("docker manifest asset by tag; delete by digest", func(t *testing.T) {
		e := one(t, assetBody("CREATED", "v2/team/app/manifests/v1"), asset)
		if e.Namespace != "team" || e.Repository != "app" || e.Tag != "v1" || e.Operator != "ci-bot" || !e.OccurredAt.Equal(time.Date(2024, 1, 2, 2, 4, 5, 678e6, time.UTC)) {
			t.Errorf("%+v", e)
		}
		e = one(t, assetBody("DELETED", "/v2/app/manifests/sha256:abc"), asset)
		if e.Action != event.DeleteImage || e.Namespace != "library" || e.Repository != "app" || e.Tag != "" || e.Digest != "sha256:abc" || e.ResourceURL != "app@sha256:abc" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("blobs, untagged manifests, updates and other formats fire nothing", func(t *testing.T) {
		none(t, "nexus", assetBody("CREATED", "v2/-/blobs/sha256:abc"), asset)
		none(t, "nexus", assetBody("CREATED", "v2/app/manifests/sha256:abc"), asset)
		none(t, "nexus", assetBody("UPDATED", "v2/app/manifests/v1"), asset)
		none(t, "nexus", body(t, "nexus/asset-created-doc.json"), asset)
		none(t, "nexus", body(t, "nexus/asset-created-doc.json"), nil)
		none(t, "nexus", []byte(`{"timestamp":"2024-01-02T03:04:05.678+0000","nodeId":"n","initiator":"admin/1","action":"UPDATED","repository":{"format":"docker","name":"r"}}`), hdr(nexusIDHeader, "rm:global:repository"))
	})
	t.Run("the header wins over the body", func(t *testing.T) {
		_, err := Parse(Notification{Body: body(t, "nexus/component-created-docker-real-fluxrecv.json"), Header: asset}, "")
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "asset is missing") {
			t.Errorf("%v", err)
		}
	})
}

func TestSemanticsGAR(t *testing.T) {
	envelope := func(data, publish string) []byte {
		return []byte(`{"message":{"data":"` + data + `","messageId":"1","publishTime":"` + publish + `"},"subscription":"projects/p/subscriptions/s"}`)
	}
	t.Run("gcr envelope", func(t *testing.T) {
		e := one(t, body(t, "google-artifact-registry/pubsub-push-envelope-gcr-real-fluxrecv.json"), nil)
		if e.Source != "gar" || e.Action != event.PushImage || e.Namespace != "am" || e.Repository != "am.kebab.api" || e.Tag != "test" ||
			e.Registry != "us.gcr.io" || e.ResourceURL != "us.gcr.io/am/am.kebab.api:test" || !e.OccurredAt.Equal(time.Date(2020, 1, 30, 4, 18, 4, 805e6, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("artifact registry: project, then repository/image", func(t *testing.T) {
		e := one(t, body(t, "google-artifact-registry/message-data-insert-digest-and-tag-gardoc.json"), nil)
		if e.Namespace != "my-project" || e.Repository != "my-repo/hello-world" || e.Tag != "1.1" || e.Digest != "sha256:..." || e.Registry != "us-west1-docker.pkg.dev" {
			t.Errorf("%+v", e)
		}
	})
	t.Run("insert by digest only fires nothing; delete by digest does", func(t *testing.T) {
		none(t, "gar", body(t, "google-artifact-registry/message-data-insert-digest-only-gardoc.json"), nil)
		e := one(t, envelope(b64(`{"action":"DELETE","digest":"europe-docker.pkg.dev/p/r/i@sha256:1"}`), "2024-01-02T03:04:05Z"), nil)
		if e.Action != event.DeleteImage || e.Tag != "" || e.Digest != "sha256:1" || e.ResourceURL != "europe-docker.pkg.dev/p/r/i@sha256:1" ||
			!e.OccurredAt.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("domain-scoped project, unpadded base64", func(t *testing.T) {
		data := strings.TrimRight(b64(`{"action":"INSERT","tag":"gcr.io/example.com/proj/img:v1"}`), "=")
		e := one(t, envelope(data, ""), nil)
		if e.Namespace != "example.com:proj" || e.Repository != "img" || !e.OccurredAt.Equal(receivedAt) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("unwrapped message takes the publish time header", func(t *testing.T) {
		e := one(t, body(t, "google-artifact-registry/message-data-delete-tag-gardoc.json"), hdr(pubsubPublishTimeHeader, "2021-02-03T04:05:06.7Z"))
		if e.Action != event.DeleteImage || e.Tag != "1.1" || !e.OccurredAt.Equal(time.Date(2021, 2, 3, 4, 5, 6, 7e8, time.UTC)) {
			t.Errorf("%+v", e)
		}
	})
	t.Run("a message with other keys is not gar", func(t *testing.T) {
		if src, err := Detect(Notification{Body: []byte(`{"action":"INSERT","tag":"gcr.io/p/i:t","extra":1}`)}); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%q %v", src, err)
		}
	})
}

// TestArrays: a top-level array reaches only the formats that accept one.
func TestArrays(t *testing.T) {
	tests := []struct {
		name, body, source string
		want               error
		reason             string
	}{
		{"empty array", `[]`, "", ErrNotJSON, "found a JSON array"},
		{"array of numbers", `[1,2]`, "", ErrNotJSON, "found a JSON array"},
		{"array of arrays", `[[{}]]`, "", ErrNotJSON, "found a JSON array"},
		{"objects and a number", `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed"},1]`, "", ErrNotJSON, "found a JSON array"},
		{"broken array", `[{"a":1},`, "", ErrNotJSON, "unexpected end"},
		{"deep array", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "", ErrNotJSON, "exceeded max depth"},
		{"objects no format claims", `[{"b":1,"a":2}]`, "", ErrUnknownFormat, "a JSON array of 1 objects (the first with keys [a b]) matches no registry format"},
		{"one foreign event", `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{}},{"eventType":"Microsoft.Storage.BlobCreated"}]`, "", ErrUnknownFormat, "array of 2 objects"},
		{"forced harbor", `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed"}]`, "harbor", ErrNotJSON, "harbor sends a JSON object"},
		{"forced azure, no event type", `[{}]`, "azure", ErrMalformed, "azure: [0].eventType is missing"},
		{"second event broken", `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{"target":{"repository":"a","tag":"v"}}},{"eventType":"Microsoft.ContainerRegistry.ImagePushed","data":"x"}]`, "", ErrMalformed, "[1].data: a JSON string that does not hold a JSON object"},
		{"element of the wrong type, forced", `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed","data":{"target":{"repository":"a","tag":"v"}}},"x"]`, "azure", ErrNotJSON, "found a JSON array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Parse(Notification{Body: []byte(tt.body), ReceivedAt: receivedAt}, tt.source)
			if !errors.Is(err, tt.want) || evs != nil {
				t.Fatalf("got %v (%d events), want %v", err, len(evs), tt.want)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if tt.source == "" {
				if _, derr := Detect(Notification{Body: []byte(tt.body)}); (derr == nil) != errors.Is(err, ErrMalformed) {
					t.Errorf("Detect: %v", derr)
				}
			}
		})
	}
}

// TestFormatErrors: what the new parsers refuse, and how they say it.
func TestFormatErrors(t *testing.T) {
	const (
		ecrEnv  = `{"detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012","region":"us-east-1","time":"2024-01-02T03:04:05Z","detail":`
		ghcrPkg = `{"action":"published","package":{"name":"app","package_type":"CONTAINER","owner":{"login":"o"},"package_version":{"name":"sha256:1","container_metadata":{"tag":{"name":"v1"}}}},"sender":{"login":"o"}}`
		nexusC  = `{"timestamp":"2024-01-02T03:04:05.000+0000","nodeId":"n","initiator":"a/1","repositoryName":"r","action":"CREATED","component":{"format":"docker","name":"a/b","version":"v1"}}`
		egPush  = `"eventType":"Microsoft.ContainerRegistry.ImagePushed"`
	)
	pkg := hdr(githubEventHeader, "package")
	comp := hdr(nexusIDHeader, nexusComponent)
	tests := []struct {
		name   string
		body   string
		header http.Header
		source string
		want   error
		reason string
	}{
		// Quay.
		{"quay no updated_tags", `{"docker_url":"quay.io/a/b","namespace":"a"}`, nil, "quay", ErrMalformed, "quay: updated_tags is missing"},
		{"quay updated_tags string", `{"docker_url":"quay.io/a/b","updated_tags":"latest"}`, nil, "", ErrMalformed, "updated_tags: want a JSON array of tags, found a JSON string"},
		{"quay tag number", `{"docker_url":"quay.io/a/b","updated_tags":["a",1]}`, nil, "", ErrMalformed, "updated_tags[1]: want a JSON string, found a JSON number"},
		{"quay no tags", `{"docker_url":"quay.io/a/b","namespace":"a","updated_tags":[]}`, nil, "", ErrMalformed, "updated_tags is empty"},
		{"quay empty tag", `{"docker_url":"quay.io/a/b","namespace":"a","updated_tags":["a",""]}`, nil, "", ErrMalformed, "updated_tags[1] is empty"},
		{"quay no namespace", `{"docker_url":"quay.io/b","repository":"b","updated_tags":["x"]}`, nil, "", ErrMalformed, "quay: namespace is missing"},
		{"quay no repository", `{"docker_url":"","namespace":"a","updated_tags":["x"]}`, nil, "", ErrMalformed, "quay: repository and name are missing"},
		{"quay repository number", `{"docker_url":"quay.io/a/b","repository":5,"updated_tags":["x"]}`, nil, "", ErrMalformed, "repository: want a JSON string, found a JSON number"},
		// Azure webhook.
		{"azure forced, no action", `{"target":{}}`, nil, "azure", ErrMalformed, "azure: action is missing"},
		{"azure target null", `{"id":"x","action":"push","target":null}`, nil, "", ErrMalformed, "azure: target is missing"},
		{"azure no repository", `{"action":"push","target":{"tag":"v1"}}`, nil, "", ErrMalformed, "target.repository is missing"},
		{"azure delete without tag or digest", `{"action":"delete","target":{"repository":"a"}}`, nil, "", ErrMalformed, "target has neither tag nor digest"},
		{"azure bad timestamp", `{"action":"push","timestamp":"yesterday","target":{"repository":"a","tag":"v"}}`, nil, "", ErrMalformed, "timestamp: \"yesterday\" is not an RFC 3339 time"},
		{"azure unknown action", `{"action":"retag","target":{}}`, nil, "", ErrUnsupportedEvent, `azure: event type "retag" is not supported`},
		{"azure chart without name", `{"action":"chart_push","target":{"repository":"repo","version":"1.0"}}`, nil, "", ErrMalformed, "target.name is missing"},
		{"azure chart without version", `{"action":"chart_delete","target":{"repository":"repo","name":"c","version":".tgz"}}`, nil, "", ErrMalformed, "target.version (the chart version) is missing"},
		{"azure repository number", `{"action":"push","target":{"repository":7}}`, nil, "", ErrMalformed, "target.repository: want a JSON string, found a JSON number"},
		{"azure action number", `{"action":1,"target":{}}`, nil, "", ErrMalformed, "action: want a JSON string, found a JSON number"},
		// Azure Event Grid.
		{"event grid data missing", `{` + egPush + `}`, nil, "", ErrMalformed, "azure: data is missing"},
		{"event grid data string not JSON", `{` + egPush + `,"data":"not json"}`, nil, "", ErrMalformed, "data: a JSON string that does not hold a JSON object"},
		{"event grid data string holds an array", `{` + egPush + `,"data":"[1]"}`, nil, "", ErrMalformed, "data: a JSON string that does not hold a JSON object"},
		{"event grid data number", `{` + egPush + `,"data":5}`, nil, "", ErrMalformed, "data: want a JSON object (or a string holding one), found a JSON number"},
		{"event grid data field of the wrong type", `{` + egPush + `,"data":"{\"target\":{\"repository\":1}}"}`, nil, "", ErrMalformed, "data.target.repository: want a JSON string, found a JSON number"},
		{"event grid no repository", `{` + egPush + `,"data":{"target":{"tag":"v"}}}`, nil, "", ErrMalformed, "data.target.repository is missing"},
		{"event grid unknown acr type", `{"eventType":"Microsoft.ContainerRegistry.ImageQuarantined","data":{}}`, nil, "", ErrUnsupportedEvent, "Microsoft.ContainerRegistry.ImageQuarantined"},
		{"event grid bad eventTime", `{` + egPush + `,"eventTime":"x","data":{"target":{"repository":"a","tag":"v"}}}`, nil, "", ErrMalformed, "eventTime: \"x\" is not an RFC 3339 time"},
		{"cloudevents bad time", `{"specversion":"1.0","type":"Microsoft.ContainerRegistry.ImagePushed","time":"x","data":{}}`, nil, "", ErrMalformed, "azure: time:"},
		{"event grid eventType number, forced", `{"eventType":1}`, nil, "azure", ErrMalformed, "action is missing"},
		// ECR.
		{"ecr forced on another service", `{"detail-type":"Object Created","source":"aws.s3","detail":{}}`, nil, "ecr", ErrMalformed, `ecr: source is "aws.s3", not "aws.ecr"`},
		{"ecr forced without detail-type", `{"source":"aws.ecr"}`, nil, "ecr", ErrMalformed, "ecr: detail-type is missing"},
		{"ecr keys in another case", strings.Replace(ecrEnv, `"detail-type"`, `"Detail-Type"`, 1) + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "ecr", ErrMalformed, "ecr: detail-type is missing"},
		{"ecr detail in another case", strings.Replace(ecrEnv, `"detail":`, `"Detail":`, 1) + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, "ecr: detail is missing"},
		{"ecr unknown detail-type", `{"detail-type":"ECR Image Teleported","source":"aws.ecr","detail":{}}`, nil, "", ErrUnsupportedEvent, "ECR Image Teleported"},
		{"ecr unknown action-type", ecrEnv + `{"result":"SUCCESS","action-type":"COPY","repository-name":"a","image-tag":"v"}}`, nil, "", ErrUnsupportedEvent, "ECR Image Action/COPY"},
		{"ecr no action-type", ecrEnv + `{"result":"SUCCESS","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, "detail.action-type is missing"},
		{"ecr no result", ecrEnv + `{"action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, "detail.result is missing"},
		{"ecr odd result", ecrEnv + `{"result":"MAYBE","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, `detail.result "MAYBE" is neither SUCCESS nor FAILURE`},
		{"ecr no detail", ecrEnv + `null}`, nil, "", ErrMalformed, "ecr: detail is missing"},
		{"ecr detail array", ecrEnv + `[]}`, nil, "", ErrMalformed, "detail: want a JSON object, found a JSON array"},
		{"ecr tag number", ecrEnv + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":1}}`, nil, "", ErrMalformed, "detail.image-tag: want a JSON string, found a JSON number"},
		{"ecr no repository", ecrEnv + `{"result":"SUCCESS","action-type":"PUSH","image-tag":"v"}}`, nil, "", ErrMalformed, "detail.repository-name is missing"},
		{"ecr delete without tag or digest", ecrEnv + `{"result":"SUCCESS","action-type":"DELETE","repository-name":"a"}}`, nil, "", ErrMalformed, "neither image-tag nor image-digest"},
		{"ecr bad account", strings.Replace(ecrEnv, "123456789012", "12x", 1) + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, `account "12x" is not an AWS account id`},
		{"ecr no region", strings.Replace(ecrEnv, "us-east-1", "", 1) + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, "ecr: region is missing"},
		{"ecr bad region", strings.Replace(ecrEnv, "us-east-1", "us/east", 1) + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, `region "us/east" is not a region name`},
		{"ecr bad time", strings.Replace(ecrEnv, "2024-01-02T03:04:05Z", "noon", 1) + `{"result":"SUCCESS","action-type":"PUSH","repository-name":"a","image-tag":"v"}}`, nil, "", ErrMalformed, "ecr: time:"},
		// GHCR.
		{"ghcr forced, nothing of github", `{"action":"published"}`, nil, "ghcr", ErrMalformed, "no X-GitHub-Event header, and neither package nor registry_package"},
		{"ghcr header and body disagree", strings.Replace(ghcrPkg, `"package":`, `"registry_package":`, 1), pkg, "", ErrMalformed, "ghcr: package is missing"},
		{"ghcr no action", strings.Replace(ghcrPkg, `"action":"published",`, ``, 1), pkg, "", ErrMalformed, "ghcr: action is missing"},
		{"ghcr unknown action", strings.Replace(ghcrPkg, `"published"`, `"archived"`, 1), pkg, "", ErrUnsupportedEvent, `"package/archived"`},
		{"ghcr no version", strings.Replace(ghcrPkg, `"package_version"`, `"other"`, 1), pkg, "", ErrMalformed, "package.package_version is missing"},
		{"ghcr no name", strings.Replace(ghcrPkg, `"name":"app",`, ``, 1), pkg, "", ErrMalformed, "package.name is missing"},
		{"ghcr no owner", strings.Replace(ghcrPkg, `"owner":{"login":"o"},`, ``, 1), pkg, "", ErrMalformed, "package.owner.login is missing"},
		{"ghcr bad time", strings.Replace(ghcrPkg, `"name":"sha256:1",`, `"name":"sha256:1","updated_at":"soon",`, 1), pkg, "", ErrMalformed, "package.package_version.updated_at: \"soon\" is not an RFC 3339 time"},
		{"ghcr tag number", strings.Replace(ghcrPkg, `"name":"v1"`, `"name":1`, 1), pkg, "", ErrMalformed, "package.package_version.container_metadata.tag.name: want a JSON string, found a JSON number"},
		// JFrog.
		{"jfrog forced, no domain", `{"event_type":"pushed"}`, nil, "jfrog", ErrMalformed, "jfrog: domain is missing"},
		{"jfrog no event_type", `{"domain":"docker","event_type":"","data":{}}`, nil, "", ErrMalformed, "jfrog: event_type is missing"},
		{"jfrog unknown docker event", `{"domain":"docker","event_type":"tagged","data":{}}`, nil, "", ErrUnsupportedEvent, `"docker/tagged"`},
		{"jfrog data null", `{"domain":"docker","event_type":"pushed","data":null}`, nil, "", ErrMalformed, "jfrog: data is missing"},
		{"jfrog data array", `{"domain":"docker","event_type":"pushed","data":[]}`, nil, "", ErrMalformed, "data: want a JSON object, found a JSON array"},
		{"jfrog no image", `{"domain":"docker","event_type":"pushed","data":{"tag":"v1"}}`, nil, "", ErrMalformed, "data.image_name is missing"},
		{"jfrog no tag", `{"domain":"docker","event_type":"deleted","data":{"image_name":"a/b"}}`, nil, "", ErrMalformed, "data.tag is missing"},
		// Nexus.
		{"nexus forced, neither header nor component", `{"action":"CREATED"}`, nil, "nexus", ErrMalformed, "no X-Nexus-Webhook-Id header, and neither component nor asset"},
		{"nexus unknown webhook id", nexusC, hdr(nexusIDHeader, "rm:repository:frobs"), "", ErrUnsupportedEvent, `"rm:repository:frobs"`},
		{"nexus no action", strings.Replace(nexusC, `"action":"CREATED",`, ``, 1), comp, "", ErrMalformed, "nexus: action is missing"},
		{"nexus unknown action", strings.Replace(nexusC, `"CREATED"`, `"MOVED"`, 1), comp, "", ErrUnsupportedEvent, `"rm:repository:component/MOVED"`},
		{"nexus no component", `{"nodeId":"n","repositoryName":"r","action":"CREATED","asset":{}}`, comp, "", ErrMalformed, "nexus: component is missing"},
		{"nexus no name", strings.Replace(nexusC, `"name":"a/b",`, ``, 1), comp, "", ErrMalformed, "component.name is missing"},
		{"nexus no version", strings.Replace(nexusC, `,"version":"v1"`, ``, 1), comp, "", ErrMalformed, "component.version (the tag) is missing"},
		{"nexus bad timestamp", strings.Replace(nexusC, `2024-01-02T03:04:05.000+0000`, `yesterday`, 1), comp, "", ErrMalformed, "nexus: timestamp:"},
		{"nexus asset without name", `{"nodeId":"n","repositoryName":"r","action":"DELETED","asset":{"format":"docker"}}`, hdr(nexusIDHeader, nexusAsset), "", ErrMalformed, "asset.name is missing"},
		{"nexus component string", `{"nodeId":"n","repositoryName":"r","action":"CREATED","component":"x"}`, nil, "", ErrMalformed, "component: want a JSON object, found a JSON string"},
		// Google.
		{"gar forced, no message", `{"subscription":"s"}`, nil, "gar", ErrMalformed, "gar: message is missing"},
		{"gar data empty", `{"message":{"data":""},"subscription":"s"}`, nil, "", ErrMalformed, "message.data is missing"},
		{"gar bad base64", `{"message":{"data":"!!!not base64"},"subscription":"s"}`, nil, "", ErrMalformed, "message.data is not base64"},
		{"gar data not an object", `{"message":{"data":"` + b64("hello") + `"},"subscription":"s"}`, nil, "", ErrMalformed, "message.data does not hold a JSON object"},
		{"gar data broken JSON", `{"message":{"data":"` + b64(`{"action":`) + `"},"subscription":"s"}`, nil, "", ErrMalformed, "message.data: unexpected end of JSON input"},
		{"gar action number", `{"message":{"data":"` + b64(`{"action":1}`) + `"},"subscription":"s"}`, nil, "", ErrMalformed, "message.data.action: want a JSON string, found a JSON number"},
		{"gar no action", `{"message":{"data":"` + b64(`{"tag":"gcr.io/p/i:t"}`) + `"},"subscription":"s"}`, nil, "", ErrMalformed, "message.data.action is missing"},
		{"gar unknown action", `{"message":{"data":"` + b64(`{"action":"UPDATE","tag":"gcr.io/p/i:t"}`) + `"},"subscription":"s"}`, nil, "", ErrUnsupportedEvent, `"UPDATE"`},
		{"gar bad publishTime", `{"message":{"data":"` + b64(`{"action":"INSERT","tag":"gcr.io/p/i:t"}`) + `","publishTime":"x"},"subscription":"s"}`, nil, "", ErrMalformed, "message.publishTime"},
		{"gar data field wrong type", `{"message":{"data":5},"subscription":"s"}`, nil, "", ErrMalformed, "message.data: want a JSON string, found a JSON number"},
		{"gar tag without a tag", `{"action":"INSERT","tag":"us.gcr.io/p/i"}`, nil, "", ErrMalformed, `tag "us.gcr.io/p/i" is not a reference`},
		{"gar tag on a port only", `{"action":"INSERT","tag":"localhost:5000/p/i:"}`, nil, "", ErrMalformed, "is not a reference"},
		{"gar tag with a digest", `{"action":"INSERT","tag":"gcr.io/p/i:t@sha256:1"}`, nil, "", ErrMalformed, "is not a reference <host>/<path>:<tag>"},
		{"gar digest without @", `{"action":"DELETE","digest":"us.gcr.io/p/i:sha256:1"}`, nil, "", ErrMalformed, "is not a reference <host>/<path>@<digest>"},
		{"gar digest and tag disagree", `{"action":"INSERT","digest":"gcr.io/p/a@sha256:1","tag":"gcr.io/p/b:t"}`, nil, "", ErrMalformed, "name different images"},
		{"gar no host", `{"action":"DELETE","tag":"p/i:t"}`, nil, "", ErrMalformed, `"p/i" does not start with a registry host`},
		{"gar no project", `{"action":"DELETE","tag":"gcr.io/i:t"}`, nil, "", ErrMalformed, "names no project and image"},
		{"gar domain project without image", `{"action":"DELETE","tag":"gcr.io/example.com/proj:t"}`, nil, "", ErrMalformed, "names no project and image"},
		{"gar empty references", `{"action":"INSERT","digest":""}`, nil, "", ErrMalformed, "digest and tag are both missing"},
		{"gar bad publish time header", `{"action":"INSERT","tag":"gcr.io/p/i:t"}`, hdr(pubsubPublishTimeHeader, "x"), "", ErrMalformed, "X-Goog-Pubsub-Publish-Time header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkRefused(t, Notification{Body: []byte(tt.body), Header: tt.header, ReceivedAt: receivedAt}, tt.source, tt.want, tt.reason)
		})
	}
}

// TestReadHeaders: the fixture helper keeps every real header line and
// skips request lines, placeholders and comments.
func TestReadHeaders(t *testing.T) {
	h := readHeaders(t, filepath.Join(fixtures, "nexus/component-created-docker-real-fluxrecv.headers.txt"))
	if h.Get(nexusIDHeader) != nexusComponent || h.Get("Content-Type") != "application/json; charset=UTF-8" || len(h) != 6 {
		t.Errorf("%v", h)
	}
	h = readHeaders(t, filepath.Join(fixtures, "ghcr/package-published-docker-octokit.headers.txt"))
	if h.Get(githubEventHeader) != "package" || h.Get("Content-Type") != "application/json" {
		t.Errorf("%v", h)
	}
	h = readHeaders(t, filepath.Join(fixtures, "tencent-tcr/pushImage.headers.txt"))
	if len(h) != 1 || h.Get("Content-Type") != "application/json" {
		t.Errorf("placeholders kept: %v", h)
	}
}

func FuzzParseQuay(f *testing.F) { fuzzSource(f, "quay", "quay") }

// eventGridArray is an Event Grid delivery as the Event Grid schema sends
// it: an array (the corpus holds single events).
const eventGridArray = `[{"eventType":"Microsoft.ContainerRegistry.ImagePushed","eventTime":"2024-05-06T07:08:09Z","data":"{\"target\":{\"repository\":\"a/b\",\"tag\":\"v1\"}}"},` +
	`{"eventType":"Microsoft.ContainerRegistry.ChartDeleted","data":{"target":{"repository":"repo","name":"c","version":"1.0.0.tgz"}}}]`

func FuzzParseAzure(f *testing.F) {
	f.Add([]byte(eventGridArray))
	fuzzSource(f, "azure-acr", "azure")
}
func FuzzParseJFrog(f *testing.F) { fuzzSource(f, "jfrog-artifactory", "jfrog") }
func FuzzParseGAR(f *testing.F)   { fuzzSource(f, "google-artifact-registry", "gar") }

// FuzzParseECR also checks IsEventBridge agrees with every event found.
func FuzzParseECR(f *testing.F) {
	fuzzSeeds(f, "aws-ecr", func(b []byte, _ string) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Parse(Notification{Body: b, ReceivedAt: receivedAt}, "ecr")
		checkEvents(t, "ecr", b, evs, err)
		if len(evs) > 0 && !IsEventBridge(b) {
			t.Fatalf("events from a body IsEventBridge refuses")
		}
	})
}

// fuzzSourceHeader fuzzes a format whose event kind is in a header, with
// the header's value as a second input.
func fuzzSourceHeader(f *testing.F, dir, source, header string) {
	fuzzSeeds(f, dir, func(b []byte, _ string) { f.Add(b, "") })
	for _, v := range headerValues(f, dir, header) {
		fuzzSeeds(f, dir, func(b []byte, _ string) { f.Add(b, v) })
	}
	f.Fuzz(func(t *testing.T, b []byte, value string) {
		n := Notification{Body: b, Header: http.Header{}, ReceivedAt: receivedAt}
		if value != "" {
			n.Header.Set(header, value)
		}
		evs, err := Parse(n, source)
		checkEvents(t, source, b, evs, err)
	})
}

// headerValues collects the values of one header in a corpus directory's
// .headers.txt files.
func headerValues(f *testing.F, dir, header string) []string {
	paths, err := filepath.Glob(filepath.Join(fixtures, dir, "*.headers.txt"))
	if err != nil {
		f.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if v := readHeaders(f, p).Get(header); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func FuzzParseGHCR(f *testing.F)  { fuzzSourceHeader(f, "ghcr", "ghcr", githubEventHeader) }
func FuzzParseNexus(f *testing.F) { fuzzSourceHeader(f, "nexus", "nexus", nexusIDHeader) }
