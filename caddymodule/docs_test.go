package caddymodule

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// docDirective is a row of a directive table in docs/configuration.md.
type docDirective struct {
	name string
	// repeatable is what the "once / repeatable" column says: "once"
	// (false), "repeatable" or "once per action" (true: one line per
	// action, so the directive itself repeats).
	repeatable bool
}

// docDirectives reads docs/configuration.md: for each "## ... `block`"
// section, the directives that start its table rows ("| `name ...").
func docDirectives(t *testing.T) map[string][]docDirective {
	t.Helper()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^## .*`([a-z_]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)")
	out := map[string][]docDirective{}
	block := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			block = m[1]
			out[block] = []docDirective{}
		} else if strings.HasPrefix(line, "## ") {
			block = ""
		} else if m := row.FindStringSubmatch(line); m != nil && block != "" {
			cells := strings.Split(strings.ReplaceAll(line, `\|`, ""), "|")
			if len(cells) < 5 {
				t.Fatalf("row without a once / repeatable column: %s", line)
			}
			once := strings.TrimSpace(cells[3])
			out[block] = append(out[block], docDirective{name: m[1], repeatable: once != "once"})
		}
	}
	return out
}

// TestConfigurationDocMatchesTheParser: docs/configuration.md lists every
// directive the Caddyfile parser accepts, and nothing it refuses.
func TestConfigurationDocMatchesTheParser(t *testing.T) {
	doc := docDirectives(t)
	parser := map[string][]docDirective{
		"authgate":         tableDirectives(globalDirectives),
		"authgate_protect": tableDirectives(protectDirectives),
		"authgate_verify":  tableDirectives(verifyDirectives),
		// The API handlers take no subdirectives (their parsers refuse any:
		// TestCaddyfileErrorsNameTheDirective).
		"authgate_api":    {},
		"authgate_manage": {},
		"authgate_portal": {},
	}
	byName := func(a, b docDirective) int { return strings.Compare(a.name, b.name) }
	for block, want := range parser {
		got, ok := doc[block]
		if !ok {
			t.Errorf("docs/configuration.md has no section for %s", block)
			continue
		}
		slices.SortFunc(got, byName)
		slices.SortFunc(want, byName)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the doc lists %v, the parser accepts %v ({name repeatable})", block, got, want)
		}
	}
	for block := range doc {
		if _, ok := parser[block]; !ok {
			t.Errorf("docs/configuration.md documents %s, which the parser does not have", block)
		}
	}
}

func tableDirectives[T any](table map[string]directive[T]) []docDirective {
	out := []docDirective{}
	for _, name := range slices.Sorted(maps.Keys(table)) {
		out = append(out, docDirective{name: name, repeatable: table[name].repeatable})
	}
	return out
}

// TestConfigurationDocExamplesAdapt: the doc's Caddyfile examples are
// valid, each as a site (handlers) or as global options.
func TestConfigurationDocExamplesAdapt(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) == 0 {
		t.Fatal("no caddyfile examples")
	}
	t.Setenv("AUTHGATE_KEY", "YXV0aGdhdGUtZG9jcy10ZXN0LWtleS0zMi1ieXRlcy1sb25nLW9r")
	for _, b := range blocks {
		config := b[1]
		if !strings.HasPrefix(config, "{") {
			config = ":8080 {\n" + config + "}\n"
		}
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil); err != nil {
			t.Errorf("example does not adapt: %v\n%s", err, config)
		}
	}
}

// exportedMetrics is every metric name a query may use: each collector's
// name, and a histogram's _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{
		// SPEC §10 requires it (Manage API metrics, issue 14); the
		// dashboard and alerts use it from the start.
		"authgate_manage_requests_total": true,
	}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, c := range metrics().collectors() {
		descs := make(chan *prometheus.Desc, 4)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			name := fqName.FindStringSubmatch(d.String())[1]
			names[name] = true
			if _, ok := c.(*prometheus.HistogramVec); ok {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					names[name+suffix] = true
				}
			}
		}
	}
	return names
}

// metricName finds the metric names in a PromQL expression.
var metricName = regexp.MustCompile(`\bauthgate_[a-z0-9_]+`)

// checkExpr fails when expr uses a metric authgate does not export, or
// none of authgate's at all.
func checkExpr(t *testing.T, where, expr string, exported map[string]bool) {
	t.Helper()
	used := metricName.FindAllString(expr, -1)
	if len(used) == 0 {
		t.Errorf("%s: %q uses no authgate metric", where, expr)
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("%s: %q uses %s, which authgate does not export", where, expr, name)
		}
	}
}

// TestDashboardUsesOnlyExportedMetrics parses the Grafana dashboard and
// checks every query (panels and variables) against authgate's metrics.
func TestDashboardUsesOnlyExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../docs/grafana/authgate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no title or no panels")
	}
	exported := exportedMetrics(t)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			checkExpr(t, "panel "+p.Title, target.Expr, exported)
		}
	}
	for _, v := range dash.Templating.List {
		checkExpr(t, "variable "+v.Name, v.Definition, exported)
	}
}

// TestAlertRulesUseOnlyExportedMetrics parses the Prometheus rules and
// checks each alert's query, and that the three alerts the operations
// page promises are there.
func TestAlertRulesUseOnlyExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("../docs/prometheus/authgate-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("the rules do not parse: %v", err)
	}
	exported := exportedMetrics(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if _, err := time.ParseDuration(r.For); err != nil || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want a for duration, a severity and a summary", r.Alert)
			}
			checkExpr(t, "alert "+r.Alert, r.Expr, exported)
		}
	}
	slices.Sort(alerts)
	if want := []string{"AuthgateLockoutSpike", "AuthgateStepUpFailureRatioHigh", "AuthgateStoreUnavailable"}; !slices.Equal(alerts, want) {
		t.Errorf("alerts %v, want %v", alerts, want)
	}
}
