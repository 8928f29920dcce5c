// Package event defines the normalised registry event: one thing that happened
// to one tag (or digest) of one repository, whatever registry reported it.
//
// Parsers in package registry turn registry bodies into Events; the matcher
// decides which triggers an Event fires; the delivery engine renders an Event
// into a webhook payload.
package event

import (
	"fmt"
	"time"
)

// Action is what happened, in TCR's vocabulary.
type Action string

// The actions regtrigger understands. More (scans, ...) may come later.
const (
	PushImage     Action = "pushImage"
	PullImage     Action = "pullImage"
	DeleteImage   Action = "deleteImage"
	UploadChart   Action = "uploadChart"
	DownloadChart Action = "downloadChart"
	DeleteChart   Action = "deleteChart"
)

// Actions lists every known action in a stable order.
var Actions = []Action{PushImage, PullImage, DeleteImage, UploadChart, DownloadChart, DeleteChart}

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	for _, k := range Actions {
		if a == k {
			return true
		}
	}
	return false
}

// ParseAction returns the Action named s, or an error listing the known ones.
func ParseAction(s string) (Action, error) {
	a := Action(s)
	if !a.Valid() {
		return "", fmt.Errorf("unknown action %q (known: %v)", s, Actions)
	}
	return a, nil
}

// IsChart reports whether the action concerns a Helm chart rather than an image.
func (a Action) IsChart() bool {
	return a == UploadChart || a == DownloadChart || a == DeleteChart
}

// Event is one normalised registry happening. A notification that names
// several tags yields several Events.
//
// The JSON form is the one `regtrigger inspect` prints and the one stored in
// delivery tasks; keep it stable.
type Event struct {
	// Source names the registry format that produced the event: tcr, harbor,
	// acr (Aliyun), dockerhub, distribution, ...
	Source string `json:"source"`
	// Action is what happened.
	Action Action `json:"action"`
	// Namespace is the project / organisation / first path segment.
	Namespace string `json:"namespace"`
	// Repository is the path inside the namespace; it may contain "/".
	Repository string `json:"repository"`
	// Tag is the tag (or chart version) concerned; empty for a delete by digest.
	Tag string `json:"tag"`
	// Digest is the content digest (sha256:...) when the registry sent one.
	Digest string `json:"digest"`
	// ResourceURL is a pullable reference (host/namespace/repository:tag or @digest).
	ResourceURL string `json:"resource_url"`
	// OccurredAt is when the registry says it happened, in UTC.
	OccurredAt time.Time `json:"occurred_at"`
	// Operator is the user or account that caused it, when known.
	Operator string `json:"operator"`
	// MediaType is the manifest media type, when known.
	MediaType string `json:"media_type,omitempty"`
	// Registry is the registry host (e.g. xxx.tencentcloudcr.com), when known.
	Registry string `json:"registry,omitempty"`

	// Raw is the registry's original body, byte for byte, for the "raw"
	// payload format. It is shared by every event of one notification.
	Raw []byte `json:"-"`
}

// FullName is namespace/repository, the name most registries show.
func (e Event) FullName() string {
	if e.Namespace == "" {
		return e.Repository
	}
	if e.Repository == "" {
		return e.Namespace
	}
	return e.Namespace + "/" + e.Repository
}
