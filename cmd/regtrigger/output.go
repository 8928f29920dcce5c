package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// The output formats of every command that prints objects (-o, --output):
// a table for people, JSON lines (one object per line) and YAML documents
// (one per object, separated by ---) for programs. The JSON and YAML forms
// hold the same fields under the same names.
const (
	outTable = "table"
	outJSON  = "json"
	outYAML  = "yaml"
)

// outputFlag adds -o, --output with the table as the default.
func outputFlag(c *cobra.Command, p *string) { outputFlagDefault(c, p, outTable) }

// outputFlagDefault adds -o, --output with another default (inspect and
// match print JSON lines unless asked otherwise).
func outputFlagDefault(c *cobra.Command, p *string, def string) {
	c.Flags().StringVarP(p, "output", "o", def, "output `FORMAT`: table, json (one object per line) or yaml")
}

// checkOutput refuses an unknown output format as a usage error.
func checkOutput(o string) error {
	switch o {
	case outTable, outJSON, outYAML:
		return nil
	}
	return usageErr("--output %q: use table, json or yaml", o)
}

// printObjects prints items as JSON lines or YAML documents, or calls
// table with a tab writer it flushes afterwards.
func printObjects[T any](w io.Writer, output string, items []T, table func(tw *tabwriter.Writer)) error {
	switch output {
	case outJSON:
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, it := range items {
			if err := enc.Encode(it); err != nil {
				return fmt.Errorf("write the output: %w", err)
			}
		}
		return nil
	case outYAML:
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		for _, it := range items {
			n, err := yamlNode(it)
			if err != nil {
				return err
			}
			if err := enc.Encode(n); err != nil {
				return fmt.Errorf("write the output: %w", err)
			}
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("write the output: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the output: %w", err)
	}
	return nil
}

// yamlNode is v's JSON form as a YAML node in block style, so that the
// YAML output has the JSON output's field names, order and omissions.
func yamlNode(v any) (*yaml.Node, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode the output: %w", err)
	}
	var n yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&n); err != nil {
		return nil, fmt.Errorf("encode the output: %w", err)
	}
	blockStyle(&n)
	return &n, nil
}

// blockStyle clears the flow and quoting styles the JSON text gave the
// nodes; the encoder quotes a string only where YAML needs it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
