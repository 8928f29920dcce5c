package registry

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/regtrigger/regtrigger/internal/event"
)

// GitHub Container Registry reports through GitHub webhooks: the "package"
// event (today) or "registry_package" (its older name, still sent), with
// action "published" when a package version appears (GHCR sent "create" in
// 2021) and "updated". The event name is only in the X-GitHub-Event header;
// the body has the package (name, owner, ecosystem / package_type) and its
// version: name = the manifest digest, container_metadata.tag.name = the
// tag ("" for an untagged version), container_metadata.manifest.
// A hook on a repository or organisation receives the packages of every
// ecosystem (npm, Maven, ...), and the ping GitHub sends when it is created.

// githubEventHeader names the GitHub event of a delivery.
const githubEventHeader = "X-GitHub-Event"

type ghcrBody struct {
	Action          string            `json:"action"`
	Package         *ghcrPackage      `json:"package"`
	RegistryPackage *ghcrPackage      `json:"registry_package"`
	Repository      *githubRepository `json:"repository"`
	Organization    *githubUser       `json:"organization"`
	Sender          *githubUser       `json:"sender"`
}

type githubRepository struct {
	Owner *githubUser `json:"owner"`
}

type githubUser struct {
	Login string `json:"login"`
}

type ghcrPackage struct {
	Name           string       `json:"name"`
	Namespace      string       `json:"namespace"`
	Ecosystem      string       `json:"ecosystem"`
	PackageType    string       `json:"package_type"`
	Owner          *githubUser  `json:"owner"`
	UpdatedAt      string       `json:"updated_at"`
	PackageVersion *ghcrVersion `json:"package_version"`
}

type ghcrVersion struct {
	Name              string                 `json:"name"`
	Version           string                 `json:"version"`
	CreatedAt         string                 `json:"created_at"`
	UpdatedAt         string                 `json:"updated_at"`
	PackageURL        string                 `json:"package_url"`
	ContainerMetadata *ghcrContainerMetadata `json:"container_metadata"`
	// Webhook bodies carry metadata as an array; GitHub's REST API uses an
	// object {"container": {"tags": [...]}}. docker_metadata is a list of
	// {"tags": [...]}. Each is read when it has the shape that holds tags.
	Metadata       json.RawMessage `json:"metadata"`
	DockerMetadata json.RawMessage `json:"docker_metadata"`
}

type ghcrContainerMetadata struct {
	Tag *ghcrTag `json:"tag"`
	// manifest is an object in every body seen; GitHub's schema leaves
	// its type open, so it is read only when it is one.
	Manifest json.RawMessage `json:"manifest"`
}

type ghcrTag struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

type ghcrManifest struct {
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
}

var (
	ghcrBodyFields              = jsonNames[ghcrBody]()
	githubRepositoryFields      = jsonNames[githubRepository]()
	githubUserFields            = jsonNames[githubUser]()
	ghcrPackageFields           = jsonNames[ghcrPackage]()
	ghcrVersionFields           = jsonNames[ghcrVersion]()
	ghcrContainerMetadataFields = jsonNames[ghcrContainerMetadata]()
	ghcrTagFields               = jsonNames[ghcrTag]()
	ghcrManifestFields          = jsonNames[ghcrManifest]()
)

func (*ghcrBody) fields() []string { return ghcrBodyFields }

func (b *ghcrBody) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "action":
		return decodeString(val, &b.Action)
	case "package":
		return decodePtr(val, &b.Package)
	case "registry_package":
		return decodePtr(val, &b.RegistryPackage)
	case "repository":
		return decodePtr(val, &b.Repository)
	case "organization":
		return decodePtr(val, &b.Organization)
	case "sender":
		return decodePtr(val, &b.Sender)
	}
	return false
}

func (*githubRepository) fields() []string { return githubRepositoryFields }

func (r *githubRepository) decodeField(name string, val json.RawMessage) bool {
	return name == "owner" && decodePtr(val, &r.Owner)
}

func (*githubUser) fields() []string { return githubUserFields }

func (u *githubUser) decodeField(name string, val json.RawMessage) bool {
	return name == "login" && decodeString(val, &u.Login)
}

func (*ghcrPackage) fields() []string { return ghcrPackageFields }

func (p *ghcrPackage) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &p.Name)
	case "namespace":
		return decodeString(val, &p.Namespace)
	case "ecosystem":
		return decodeString(val, &p.Ecosystem)
	case "package_type":
		return decodeString(val, &p.PackageType)
	case "owner":
		return decodePtr(val, &p.Owner)
	case "updated_at":
		return decodeString(val, &p.UpdatedAt)
	case "package_version":
		return decodePtr(val, &p.PackageVersion)
	}
	return false
}

func (*ghcrVersion) fields() []string { return ghcrVersionFields }

func (v *ghcrVersion) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &v.Name)
	case "version":
		return decodeString(val, &v.Version)
	case "created_at":
		return decodeString(val, &v.CreatedAt)
	case "updated_at":
		return decodeString(val, &v.UpdatedAt)
	case "package_url":
		return decodeString(val, &v.PackageURL)
	case "container_metadata":
		return decodePtr(val, &v.ContainerMetadata)
	case "metadata":
		v.Metadata = val
		return true
	case "docker_metadata":
		v.DockerMetadata = val
		return true
	}
	return false
}

func (*ghcrContainerMetadata) fields() []string { return ghcrContainerMetadataFields }

func (m *ghcrContainerMetadata) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "tag":
		return decodePtr(val, &m.Tag)
	case "manifest":
		m.Manifest = val
		return true
	}
	return false
}

func (*ghcrTag) fields() []string { return ghcrTagFields }

func (t *ghcrTag) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "name":
		return decodeString(val, &t.Name)
	case "digest":
		return decodeString(val, &t.Digest)
	}
	return false
}

func (*ghcrManifest) fields() []string { return ghcrManifestFields }

func (m *ghcrManifest) decodeField(name string, val json.RawMessage) bool {
	switch name {
	case "digest":
		return decodeString(val, &m.Digest)
	case "media_type":
		return decodeString(val, &m.MediaType)
	}
	return false
}

// detectGHCR: GitHub's event header, or a body with registry_package, or
// with package and sender (every GitHub webhook body names its sender).
func detectGHCR(t *top, h http.Header) bool {
	o := t.obj
	if h.Get(githubEventHeader) != "" {
		return true
	}
	if isObject(o.get("registry_package")) {
		return true
	}
	return isObject(o.get("package")) && o.has("sender")
}

func parseGHCR(n Notification, t *top) ([]event.Event, error) {
	const source = "ghcr"
	var b ghcrBody
	if err := decodeBody(source, n, t, &b); err != nil {
		return nil, err
	}
	name := strings.ToLower(strings.TrimSpace(n.Header.Get(githubEventHeader)))
	if name == "" {
		switch {
		case b.RegistryPackage != nil:
			name = "registry_package"
		case b.Package != nil:
			name = "package"
		default:
			return nil, malformed(source, "no %s header, and neither package nor registry_package is in the body", githubEventHeader)
		}
	}
	var pkg *ghcrPackage
	switch name {
	case "package":
		pkg = b.Package
	case "registry_package":
		pkg = b.RegistryPackage
	default:
		// ping, and every other GitHub event a hook may be subscribed to.
		return nil, nil
	}
	if pkg == nil {
		return nil, malformed(source, "%s is missing", name)
	}
	switch b.Action {
	case "published", "create", "created":
	case "updated":
		// A version's metadata changed; new content is a new version,
		// which is "published".
		return nil, nil
	case "":
		return nil, malformed(source, "action is missing")
	default:
		return nil, unsupported(source, name+"/"+b.Action)
	}
	if !ghcrContainer(pkg) {
		return nil, nil // npm, Maven, RubyGems, NuGet packages
	}
	v := pkg.PackageVersion
	if v == nil {
		return nil, malformed(source, "%s.package_version is missing", name)
	}

	owner := ""
	switch {
	case pkg.Owner != nil && pkg.Owner.Login != "":
		owner = pkg.Owner.Login
	case pkg.Namespace != "":
		// "owner", or "owner/repository" in the documented example.
		owner, _, _ = strings.Cut(strings.Trim(pkg.Namespace, "/"), "/")
	case b.Repository != nil && b.Repository.Owner != nil && b.Repository.Owner.Login != "":
		owner = b.Repository.Owner.Login
	case b.Organization != nil:
		owner = b.Organization.Login
	}
	// GHCR names are lowercase in every reference (GitHub sends the
	// owner's display case: "UtaiteBOX" for ghcr.io/utaitebox/...).
	ns, repo := strings.ToLower(owner), strings.ToLower(strings.Trim(pkg.Name, "/"))
	switch {
	case ns == "":
		return nil, malformed(source, "%s.owner.login is missing", name)
	case repo == "":
		return nil, malformed(source, "%s.name is missing", name)
	}

	tags, digest, mediaType := ghcrVersionRefs(v)
	if len(tags) == 0 {
		// An untagged version: a platform manifest of a multi-arch push, as
		// Distribution does.
		return nil, nil
	}
	at, err := ghcrTime(name, pkg, v)
	if err != nil {
		return nil, err
	}
	if at.IsZero() {
		at = n.ReceivedAt.UTC()
	}
	host := "ghcr.io"
	if h := hostOf(v.PackageURL); h != "" {
		host = strings.ToLower(h) // GitHub Enterprise Server: containers.<host>
	}
	operator := ""
	if b.Sender != nil {
		operator = b.Sender.Login
	}
	evs := make([]event.Event, 0, len(tags))
	for _, tag := range tags {
		evs = append(evs, event.Event{
			Source: source, Action: event.PushImage, Namespace: ns, Repository: repo, Tag: tag, Digest: digest,
			ResourceURL: reference(host, ns, repo, tag, ""), OccurredAt: at, Operator: operator,
			MediaType: mediaType, Registry: host, Raw: n.Body,
		})
	}
	return evs, nil
}

// ghcrContainer reports whether a package is a container image. The
// documented example says ecosystem "docker" but package_type "npm", so
// either naming a container is enough; a body naming neither is taken for
// one (every other ecosystem names itself).
func ghcrContainer(p *ghcrPackage) bool {
	e, t := strings.ToLower(p.Ecosystem), strings.ToLower(p.PackageType)
	if e == "" && t == "" {
		return true
	}
	return e == "docker" || e == "container" || t == "docker" || t == "container"
}

// ghcrVersionRefs returns the tags of a package version (in the order found,
// without repeats), its digest and its manifest media type.
func ghcrVersionRefs(v *ghcrVersion) (tags []string, digest, mediaType string) {
	seen := map[string]bool{}
	add := func(t string) {
		if t != "" && !seen[t] {
			seen[t] = true
			tags = append(tags, t)
		}
	}
	var manifest ghcrManifest
	tagDigest := ""
	if m := v.ContainerMetadata; m != nil {
		if m.Tag != nil {
			add(m.Tag.Name)
			tagDigest = m.Tag.Digest
		}
		if isObject(m.Manifest) && !decodeStruct(m.Manifest, &manifest) {
			// Best effort: encoding/json fills what it can.
			manifest = ghcrManifest{}
			_ = json.Unmarshal(m.Manifest, &manifest)
		}
	}
	if isObject(v.Metadata) {
		var md struct {
			Container struct {
				Tags []json.RawMessage `json:"tags"`
			} `json:"container"`
		}
		if json.Unmarshal(v.Metadata, &md) == nil {
			for _, t := range md.Container.Tags {
				add(jsonString(t))
			}
		}
	}
	var dm []struct {
		Tags []json.RawMessage `json:"tags"`
	}
	if len(v.DockerMetadata) > 0 && json.Unmarshal(v.DockerMetadata, &dm) == nil {
		for _, d := range dm {
			for _, t := range d.Tags {
				add(jsonString(t))
			}
		}
	}
	// The 2019 GitHub Package Registry named a container version by its
	// tag; GHCR names it by its digest.
	if len(tags) == 0 && v.Version != "" && !strings.Contains(v.Version, ":") {
		add(v.Version)
	}
	for _, d := range []string{v.Name, manifest.Digest, tagDigest, v.Version} {
		if strings.Contains(d, ":") {
			digest = d
			break
		}
	}
	return tags, digest, manifest.MediaType
}

// ghcrTime is the version's update time, else its creation time, else the
// package's update time; GHCR often sends Go's zero time, which counts as
// none.
func ghcrTime(name string, p *ghcrPackage, v *ghcrVersion) (time.Time, error) {
	for _, c := range [...]struct{ field, value string }{
		{".package_version.updated_at", v.UpdatedAt},
		{".package_version.created_at", v.CreatedAt},
		{".updated_at", p.UpdatedAt},
	} {
		t, err := rfc3339Time(c.value)
		if err != nil {
			return time.Time{}, malformed("ghcr", "%s%s: %v", name, c.field, err)
		}
		if !t.IsZero() {
			return t, nil
		}
	}
	return time.Time{}, nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// jsonString returns raw (valid JSON) as a string, "" when it is not a
// JSON string.
func jsonString(raw json.RawMessage) string {
	var s string
	decodeString(raw, &s)
	return s
}
