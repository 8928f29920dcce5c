// Package payload renders an event into the body of an outbound webhook
// request, in one of the formats a trigger can choose.
package payload

import "fmt"

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
)

// Default is the format used when a trigger names none.
const Default = TCR

// Formats lists every format in a stable order.
var Formats = []Format{TCR, Harbor, ACR, CloudEvents, Raw}

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
	return "", fmt.Errorf("unknown format %q (known: %v)", s, Formats)
}
