package auth

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SpecSyntax is the form of one registry entry, for help texts and errors.
const SpecSyntax = "name[:source]=[scheme:]secret[,secret2][ max-age=DURATION|off]"

// ParseSpec reads registries from the compact form used by `serve
// --registry` and REGTRIGGER_REGISTRIES: entries separated by ';' or
// newlines, each SpecSyntax. Examples:
//
//	tcr-prod:tcr=3f9c...e1                  a token (the default scheme)
//	hub=8a7b...,c0d1...                     two tokens while rotating
//	ghcr=github:5e6f...                     GHCR's webhook secret
//	jfrog=jfrog:77aa...
//	nexus=nexus:0b1c...,nexus:9d8e... max-age=30m
//
// The scheme prefix is one of token, github, jfrog and nexus followed by
// ':'. Anything else before a ':' is part of the token, so tokens holding
// ':' keep working; a token that itself starts with a scheme name and ':'
// is written with an explicit "token:" in front. All secrets of an entry
// share one scheme: writing it once is enough, on each is fine, two
// different ones are an error. Spaces around ',' are ignored; after the
// secrets, whitespace-separated options may follow (max-age: how far a
// signed registry's event time may be from now; "off" disables the check).
//
// Every problem is reported at once. Errors name the entry by its position
// (and its name when it is a valid one) and never echo a secret.
func ParseSpec(spec string) ([]Config, error) {
	var out []Config
	var errs []error
	for i, entry := range strings.FieldsFunc(spec, func(r rune) bool { return r == ';' || r == '\n' }) {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		c, err := parseEntry(entry)
		if err != nil {
			label := fmt.Sprintf("registry entry %d", i+1)
			if nameRE.MatchString(c.Name) {
				label += fmt.Sprintf(" (%s)", c.Name)
			}
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			continue
		}
		out = append(out, c)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// aroundComma matches a comma with the spaces around it.
var aroundComma = regexp.MustCompile(`\s*,\s*`)

// parseEntry reads one entry. On error the returned Config still holds the
// name, so the caller can say which entry is wrong.
func parseEntry(entry string) (Config, error) {
	head, rest, ok := strings.Cut(entry, "=")
	if !ok {
		// Do not echo the entry: it may be a token.
		return Config{}, fmt.Errorf("want %s", SpecSyntax)
	}
	name, source, _ := strings.Cut(strings.TrimSpace(head), ":")
	c := Config{Name: name, Source: source}
	fields := strings.Fields(aroundComma.ReplaceAllString(strings.TrimSpace(rest), ","))
	if len(fields) == 0 {
		return c, errors.New("no secret after '='")
	}
	for i, item := range strings.Split(fields[0], ",") {
		if item == "" {
			continue
		}
		if prefix, secret, ok := strings.Cut(item, ":"); ok && Scheme(prefix).known() {
			if c.Scheme != "" && c.Scheme != Scheme(prefix) {
				return c, fmt.Errorf("secret %d names the %s scheme, an earlier one %s: the secrets of one registry share one scheme", i+1, prefix, c.Scheme)
			}
			c.Scheme, item = Scheme(prefix), secret
		}
		c.Tokens = append(c.Tokens, item)
	}
	for _, opt := range fields[1:] {
		key, value, ok := strings.Cut(opt, "=")
		switch {
		case !ok:
			return c, errors.New("after the secrets, want options such as max-age=10m (a secret cannot contain spaces)")
		case key == "max-age":
			if c.MaxAge != 0 {
				return c, errors.New("max-age is given twice")
			}
			if value == "off" {
				c.MaxAge = MaxAgeOff
				continue
			}
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return c, errors.New("max-age: want a duration such as 10m or 1h, or off")
			}
			c.MaxAge = d
		default:
			// The key is not echoed: a secret mistakenly split by a
			// space could look like one.
			return c, errors.New("unknown option after the secrets (known: max-age; a secret cannot contain spaces)")
		}
	}
	return c, nil
}
