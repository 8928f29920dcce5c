package scf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/regtrigger/regtrigger/internal/config"
)

// TestTencentServerlessFiles: deploy/tencent's Serverless Cloud Framework
// files declare what the functions read: runtime Go1 with handler main,
// only known variables, the native store and queue, a VPC, and the
// triggers each function answers.
func TestTencentServerlessFiles(t *testing.T) {
	type component struct {
		Component string `yaml:"component"`
		Inputs    struct {
			Handler     string            `yaml:"handler"`
			Runtime     string            `yaml:"runtime"`
			Timeout     int               `yaml:"timeout"`
			VPC         map[string]string `yaml:"vpcConfig"`
			Environment struct {
				Variables map[string]string `yaml:"variables"`
			} `yaml:"environment"`
			Events []map[string]struct {
				Parameters map[string]any `yaml:"parameters"`
			} `yaml:"events"`
		} `yaml:"inputs"`
	}
	tests := []struct {
		dir    string
		events []string
	}{
		{"receiver", []string{"http"}},
		{"dispatcher", []string{"ckafka", "timer"}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "tencent", tt.dir, "serverless.yml"))
			if err != nil {
				t.Fatal(err)
			}
			var c component
			if err := yaml.Unmarshal(b, &c); err != nil {
				t.Fatal(err)
			}
			in := c.Inputs
			if c.Component != "scf" || in.Runtime != "Go1" || in.Handler != "main" || in.VPC["vpcId"] == "" || in.VPC["subnetId"] == "" {
				t.Errorf("%+v", c)
			}
			for name := range in.Environment.Variables {
				if !slices.Contains(config.Env, name) {
					t.Errorf("variable %s is not read by the functions", name)
				}
			}
			for _, need := range NativeRequires {
				if in.Environment.Variables[need] == "" {
					t.Errorf("%s is not set", need)
				}
			}
			var kinds []string
			for _, ev := range in.Events {
				for kind, e := range ev {
					kinds = append(kinds, kind)
					if kind == "timer" {
						if cron, _ := e.Parameters["cronExpression"].(string); len(strings.Fields(cron)) != 7 {
							t.Errorf("timer %q: SCF wants 7 fields", cron)
						}
					}
				}
			}
			if !slices.Equal(kinds, tt.events) {
				t.Errorf("events %v, want %v", kinds, tt.events)
			}
		})
	}
}
