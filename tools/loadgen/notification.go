package main

import (
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"
)

// bodies makes distinct Tencent TCR push notifications for public/nginx:
// each has its own tag (run id and sequence number), so its
// receiver.Fingerprint differs from every other one and the duplicate check
// drops none of them, and occur_at is the time it is made, so it is never
// refused as stale.
type bodies struct {
	run string
	seq atomic.Int64
}

// Notification body shapes (the fields internal/registry reads for TCR).
type tcrPush struct {
	Type      string       `json:"type"`
	OccurAt   int64        `json:"occur_at"`
	EventData tcrEventData `json:"event_data"`
	Operator  string       `json:"operator"`
}

type tcrEventData struct {
	Resources  []tcrResource `json:"resources"`
	Repository tcrRepository `json:"repository"`
}

type tcrResource struct {
	Digest      string `json:"digest"`
	Tag         string `json:"tag"`
	ResourceURL string `json:"resource_url"`
}

type tcrRepository struct {
	DateCreated  int64  `json:"date_created"`
	Name         string `json:"name"`
	Namespace    string `json:"namespace"`
	RepoFullName string `json:"repo_full_name"`
	RepoType     string `json:"repo_type"`
}

// loadDigest is the image digest of every generated push.
const loadDigest = "sha256:89a42c3ba15f09a3fbe39856bddacdf9e94cd03df7403cad4fc1056ee268fc9"

// next returns the next body and its tag.
func (b *bodies) next(now time.Time) ([]byte, string) {
	tag := b.run + "-" + strconv.FormatInt(b.seq.Add(1), 10)
	return tcrBody(tag, now), tag
}

// tcrBody is a TCR push of public/nginx:tag that occurred at at, the shape
// of events/bodies/tcr-push.json (about 400 bytes).
func tcrBody(tag string, at time.Time) []byte {
	b, err := json.Marshal(tcrPush{
		Type:    "pushImage",
		OccurAt: at.Unix(),
		EventData: tcrEventData{
			Resources: []tcrResource{{Digest: loadDigest, Tag: tag, ResourceURL: "loadgen.tencentcloudcr.com/public/nginx:" + tag}},
			Repository: tcrRepository{
				DateCreated: 1587119137, Name: "nginx", Namespace: "public", RepoFullName: "public/nginx", RepoType: "public",
			},
		},
		Operator: "loadgen",
	})
	if err != nil {
		panic(err) // fixed types: cannot happen
	}
	return b
}
