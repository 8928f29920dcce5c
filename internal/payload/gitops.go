package payload

import "github.com/regtrigger/regtrigger/internal/event"

// --- dockerhub: a Docker Hub webhook body -----------------------------------------
//
// What receivers written for Docker Hub read (Keel's /v1/webhooks/dockerhub,
// Argo CD Image Updater's webhook): repository.repo_name and push_data.tag.
// repo_name is the image as a workload names it: registry/namespace/
// repository when the registry is known, so it matches an image pulled
// from that registry. The field set and order are Docker Hub's; what
// regtrigger does not know (stars, descriptions, the Dockerfile) is empty.

type dockerhubPayload struct {
	CallbackURL string              `json:"callback_url"`
	PushData    dockerhubPushData   `json:"push_data"`
	Repository  dockerhubRepository `json:"repository"`
}

type dockerhubPushData struct {
	Images   []string `json:"images"`
	PushedAt int64    `json:"pushed_at"`
	Pusher   string   `json:"pusher"`
	Tag      string   `json:"tag"`
}

type dockerhubRepository struct {
	CommentCount    int    `json:"comment_count"`
	DateCreated     int64  `json:"date_created"`
	Description     string `json:"description"`
	Dockerfile      string `json:"dockerfile"`
	FullDescription string `json:"full_description"`
	IsOfficial      bool   `json:"is_official"`
	IsPrivate       bool   `json:"is_private"`
	IsTrusted       bool   `json:"is_trusted"`
	Name            string `json:"name"`
	Namespace       string `json:"namespace"`
	Owner           string `json:"owner"`
	RepoName        string `json:"repo_name"`
	RepoURL         string `json:"repo_url"`
	StarCount       int    `json:"star_count"`
	Status          string `json:"status"`
}

func dockerhubBody(ev event.Event, m Meta) dockerhubPayload {
	name := ev.FullName()
	if ev.Registry != "" {
		name = ev.Registry + "/" + name
	}
	repoURL := ""
	if ev.Registry != "" {
		repoURL = "https://" + ev.Registry + "/" + ev.FullName()
	}
	images := []string{}
	if ev.Digest != "" {
		images = append(images, ev.Digest)
	}
	return dockerhubPayload{
		PushData: dockerhubPushData{Images: images, PushedAt: occurred(ev, m).Unix(), Pusher: ev.Operator, Tag: ev.Tag},
		Repository: dockerhubRepository{
			IsPrivate: true, Name: ev.Repository, Namespace: ev.Namespace, Owner: ev.Namespace,
			RepoName: name, RepoURL: repoURL, Status: "Active",
		},
	}
}

// PushOnly reports whether format f can only carry pushes (Docker Hub
// sends nothing else, and its receivers treat every body as a push).
func (f Format) PushOnly() bool { return f == DockerHub }
