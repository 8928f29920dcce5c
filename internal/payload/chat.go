package payload

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/regtrigger/regtrigger/internal/event"
)

// summary is what every chat message says about an event: what happened,
// to what, where and when, and a link when the event has one.
type summary struct {
	Title    string // "Image pushed"
	Ref      string // namespace/repository:tag, or @digest without a tag
	Digest   string // sha256: and the first 12 hex digits
	Registry string
	Time     string // 2006-01-02 15:04:05 UTC
	Operator string
	Link     string // an http(s) URL of the event (a chart's download URL), or ""
	Trigger  string
	// A coalesced delivery's tags and digests ("v1.2.3, v1.2, latest"),
	// and how many events it carries; "" for one event.
	Tags, Digests, Events string
}

// Titles are the chat messages' headline for each action.
var Titles = map[event.Action]string{
	event.PushImage:     "Image pushed",
	event.PullImage:     "Image pulled",
	event.DeleteImage:   "Image deleted",
	event.UploadChart:   "Chart uploaded",
	event.DownloadChart: "Chart downloaded",
	event.DeleteChart:   "Chart deleted",
}

func summarize(ev event.Event, m Meta) summary {
	s := summary{
		Title: Titles[ev.Action], Ref: ev.FullName(), Digest: ShortDigest(ev.Digest), Registry: ev.Registry,
		Time: occurred(ev, m).Format("2006-01-02 15:04:05 UTC"), Operator: ev.Operator, Trigger: m.Trigger,
	}
	if s.Title == "" {
		s.Title = string(ev.Action)
	}
	switch {
	case ev.Tag != "":
		s.Ref += ":" + ev.Tag
	case ev.Digest != "":
		s.Ref += "@" + s.Digest
	}
	if strings.HasPrefix(ev.ResourceURL, "https://") || strings.HasPrefix(ev.ResourceURL, "http://") {
		s.Link = ev.ResourceURL
	}
	if evs := coalesced(m); evs != nil {
		digests := distinct(ev, m, digestOf)
		s.Tags = listed(distinct(ev, m, tagOf), func(t string) string { return t })
		if len(digests) > 1 {
			s.Digest, s.Digests = "", listed(digests, ShortDigest)
		}
		s.Events = strconv.Itoa(len(evs))
	}
	return s
}

// listed joins the first MaxListed values, each through short, and counts
// the rest.
func listed(vs []string, short func(string) string) string {
	var b strings.Builder
	for i, v := range vs {
		if i == MaxListed {
			b.WriteString(" and " + strconv.Itoa(len(vs)-MaxListed) + " more")
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(short(v))
	}
	return b.String()
}

// ShortDigest is a digest's algorithm and its first 12 hex digits
// ("sha256:89a42c3ba15f"), as registries' consoles show it.
func ShortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// facts are the summary's name/value lines, empty ones left out.
func (s summary) facts() [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	add("Repository", s.Ref)
	add("Digest", s.Digest)
	add("Tags", s.Tags)
	add("Digests", s.Digests)
	add("Registry", s.Registry)
	add("Time", s.Time)
	add("Operator", s.Operator)
	add("Trigger", s.Trigger)
	add("Events", s.Events)
	return out
}

// --- slack: an incoming webhook message ------------------------------------------

// Slack's mrkdwn needs &, < and > escaped, and nothing else.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

type slackMessage struct {
	Text   string       `json:"text"` // the notification and fallback text
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

func slackBody(ev event.Event, m Meta) slackMessage {
	s := summarize(ev, m)
	esc := slackEscaper.Replace
	msg := slackMessage{Text: esc(s.Title + ": " + s.Ref)}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: s.Title}})
	var fields []slackText
	for _, f := range s.facts() {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*" + f[0] + "*\n" + esc(f[1])})
	}
	// A section holds at most 10 fields; the summary has at most 9.
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Fields: fields})
	if s.Link != "" {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: "<" + esc(s.Link) + "|Open " + esc(s.Ref) + ">"}}})
	}
	return msg
}

// --- teams: a Workflows webhook posting an Adaptive Card -------------------------

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	ContentURL  *string   `json:"contentUrl"` // null, as the Workflows template sends it
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema  string        `json:"$schema"`
	Type    string        `json:"type"`
	Version string        `json:"version"`
	Body    []teamsBlock  `json:"body"`
	Actions []teamsAction `json:"actions,omitempty"`
}

type teamsBlock struct {
	Type   string      `json:"type"`
	Text   string      `json:"text,omitempty"`
	Weight string      `json:"weight,omitempty"`
	Size   string      `json:"size,omitempty"`
	Wrap   bool        `json:"wrap,omitempty"`
	Facts  []teamsFact `json:"facts,omitempty"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type teamsAction struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

func teamsBody(ev event.Event, m Meta) teamsMessage {
	s := summarize(ev, m)
	card := teamsCard{
		Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
		Body: []teamsBlock{{Type: "TextBlock", Text: s.Title, Weight: "Bolder", Size: "Medium", Wrap: true}},
	}
	var facts []teamsFact
	for _, f := range s.facts() {
		facts = append(facts, teamsFact{Title: f[0], Value: f[1]})
	}
	card.Body = append(card.Body, teamsBlock{Type: "FactSet", Facts: facts})
	if s.Link != "" {
		card.Actions = []teamsAction{{Type: "Action.OpenUrl", Title: "Open", URL: s.Link}}
	}
	return teamsMessage{Type: "message", Attachments: []teamsAttachment{{ContentType: "application/vnd.microsoft.card.adaptive", Content: card}}}
}

// --- wecom: 企业微信 group robot, markdown --------------------------------------

// WeComMaxContent is the most bytes (UTF-8) a WeCom markdown message holds.
const WeComMaxContent = 4096

type wecomMessage struct {
	MsgType  string        `json:"msgtype"`
	Markdown wecomMarkdown `json:"markdown"`
}

type wecomMarkdown struct {
	Content string `json:"content"`
}

func wecomBody(ev event.Event, m Meta) wecomMessage {
	s := summarize(ev, m)
	var b strings.Builder
	b.WriteString("**" + s.Title + "** <font color=\"info\">" + s.Ref + "</font>\n")
	for _, f := range s.facts() {
		if f[0] != "Repository" { // in the headline
			b.WriteString("> " + f[0] + ": " + f[1] + "\n")
		}
	}
	if s.Link != "" {
		b.WriteString("[Open](" + s.Link + ")\n")
	}
	return wecomMessage{MsgType: "markdown", Markdown: wecomMarkdown{Content: truncateUTF8(b.String(), WeComMaxContent)}}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// --- dingtalk: 钉钉 custom robot, markdown ---------------------------------------

type dingtalkMessage struct {
	MsgType  string           `json:"msgtype"`
	Markdown dingtalkMarkdown `json:"markdown"`
}

type dingtalkMarkdown struct {
	Title string `json:"title"` // the notification's text
	Text  string `json:"text"`
}

func dingtalkBody(ev event.Event, m Meta) dingtalkMessage {
	s := summarize(ev, m)
	var b strings.Builder
	b.WriteString("### " + s.Title + "\n\n")
	for _, f := range s.facts() {
		b.WriteString("- **" + f[0] + "**: " + f[1] + "\n")
	}
	if s.Link != "" {
		b.WriteString("\n[Open](" + s.Link + ")\n")
	}
	return dingtalkMessage{MsgType: "markdown", Markdown: dingtalkMarkdown{Title: s.Title + " " + s.Ref, Text: b.String()}}
}

// --- feishu: 飞书 / Lark custom bot, an interactive card -------------------------

type feishuMessage struct {
	// Timestamp and Sign are set when the trigger has a secret.
	Timestamp string     `json:"timestamp,omitempty"`
	Sign      string     `json:"sign,omitempty"`
	MsgType   string     `json:"msg_type"`
	Card      feishuCard `json:"card"`
}

type feishuCard struct {
	Header   feishuHeader    `json:"header"`
	Elements []feishuElement `json:"elements"`
}

type feishuHeader struct {
	Title    feishuText `json:"title"`
	Template string     `json:"template"`
}

type feishuText struct {
	Tag     string `json:"tag"` // plain_text or lark_md
	Content string `json:"content"`
}

type feishuElement struct {
	Tag     string         `json:"tag"`
	Fields  []feishuField  `json:"fields,omitempty"`
	Actions []feishuButton `json:"actions,omitempty"`
}

type feishuField struct {
	IsShort bool       `json:"is_short"`
	Text    feishuText `json:"text"`
}

type feishuButton struct {
	Tag  string     `json:"tag"`
	Text feishuText `json:"text"`
	Type string     `json:"type"`
	URL  string     `json:"url"`
}

func feishuBody(ev event.Event, m Meta) feishuMessage {
	s := summarize(ev, m)
	var fields []feishuField
	for _, f := range s.facts() {
		fields = append(fields, feishuField{IsShort: f[0] != "Repository", Text: feishuText{Tag: "lark_md", Content: "**" + f[0] + "**\n" + f[1]}})
	}
	card := feishuCard{
		Header:   feishuHeader{Title: feishuText{Tag: "plain_text", Content: s.Title}, Template: feishuColour(ev.Action)},
		Elements: []feishuElement{{Tag: "div", Fields: fields}},
	}
	if s.Link != "" {
		card.Elements = append(card.Elements, feishuElement{Tag: "action", Actions: []feishuButton{{Tag: "button", Text: feishuText{Tag: "plain_text", Content: "Open"}, Type: "default", URL: s.Link}}})
	}
	msg := feishuMessage{MsgType: "interactive", Card: card}
	if m.Secret != "" {
		msg.Timestamp, msg.Sign = FeishuSign(m.Secret, m.Time)
	}
	return msg
}

// feishuColour is the card header's colour: red for deletes, green for
// pushes and uploads, blue otherwise.
func feishuColour(a event.Action) string {
	switch a {
	case event.DeleteImage, event.DeleteChart:
		return "red"
	case event.PushImage, event.UploadChart:
		return "green"
	}
	return "blue"
}

// unix is t in Unix seconds; the zero time is the Unix epoch's.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
