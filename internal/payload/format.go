// Package payload renders an event into the outbound webhook request a
// trigger's format describes: the body, its content type, how the
// trigger's secret signs it, and how the receiver's answer says whether it
// took the message.
package payload

import (
	"fmt"
	"strings"
)

// Format names a payload shape.
type Format string

// The payload formats. TCR is the default so that webhook servers written for
// Tencent TCR work unchanged.
const (
	TCR         Format = "tcr"
	Harbor      Format = "harbor"
	ACR         Format = "acr"
	CloudEvents Format = "cloudevents"
	Raw         Format = "raw"

	// Chat robots: a readable message, the platform's own signing and
	// success check.
	Slack    Format = "slack"    // Slack incoming webhook, Block Kit with a text fallback
	Teams    Format = "teams"    // Microsoft Teams Workflows webhook, an Adaptive Card
	WeCom    Format = "wecom"    // 企业微信 group robot, markdown
	DingTalk Format = "dingtalk" // 钉钉 custom robot, markdown, optional 加签 in the query
	Feishu   Format = "feishu"   // 飞书 / Lark custom bot, an interactive card, optional signature in the body

	// GitOps receivers.
	Flux      Format = "flux"      // Flux notification-controller generic-hmac Receiver
	DockerHub Format = "dockerhub" // a Docker Hub webhook body (Keel, Argo CD Image Updater)

	// Template is the trigger's own Go text/template.
	Template Format = "template"
)

// Default is the format used when a trigger names none.
const Default = TCR

// Formats lists every format in a stable order.
var Formats = []Format{TCR, Harbor, ACR, CloudEvents, Raw, Slack, Teams, WeCom, DingTalk, Feishu, Flux, DockerHub, Template}

// ParseFormat returns the Format named s ("" means Default), or an error
// listing the known formats.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return Default, nil
	}
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return "", fmt.Errorf("unknown format %q (known: %s)", s, strings.Join(names, ", "))
}
