// Package kubernetes holds veo4k's Kubernetes manifests; this test keeps them
// in agreement with the code: variable names, stream and consumer names,
// probes, and the hardening every container must have.
package kubernetes

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/veo4k/veo4k/pkg/config"
	"github.com/veo4k/veo4k/pkg/stream"
)

type object = map[string]any

func load(t *testing.T) map[string][]object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]object{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			var o object
			if err := dec.Decode(&o); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			if o != nil {
				out[f] = append(out[f], o)
			}
		}
		fh.Close()
	}
	return out
}

// get walks a path of map keys and list indexes.
func get(o any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := o.(map[string]any)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			l, ok := o.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func envNames() map[string]bool {
	names := map[string]bool{}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("env"); tag != "" {
			names[strings.Split(tag, ",")[0]] = true
		}
	}
	return names
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	docs := load(t)
	k := docs["kustomization.yaml"][0]
	var listed []string
	for _, r := range get(k, "resources").([]any) {
		listed = append(listed, r.(string))
	}
	for f := range docs {
		if f == "kustomization.yaml" || f == "nats-values.yaml" {
			continue
		}
		if !slices.Contains(listed, f) {
			t.Errorf("%s is not in kustomization.yaml's resources", f)
		}
	}
}

func TestVariablesExist(t *testing.T) {
	known := envNames()
	for f, objs := range load(t) {
		for _, o := range objs {
			if get(o, "kind") == "ConfigMap" {
				for name := range get(o, "data").(map[string]any) {
					if !known[name] {
						t.Errorf("%s: ConfigMap sets %s, which veo4k does not read", f, name)
					}
				}
			}
			for _, c := range containers(o) {
				env, _ := get(c, "env").([]any)
				for _, e := range env {
					if name := get(e, "name").(string); !known[name] {
						t.Errorf("%s: container sets %s, which veo4k does not read", f, name)
					}
				}
			}
		}
	}
}

func containers(o object) []any {
	if get(o, "kind") != "Deployment" {
		return nil
	}
	cs, _ := get(o, "spec", "template", "spec", "containers").([]any)
	return cs
}

func TestDeploymentsAreHardenedAndProbed(t *testing.T) {
	seen := map[string]bool{}
	for f, objs := range load(t) {
		for _, o := range objs {
			if get(o, "kind") != "Deployment" {
				continue
			}
			name := get(o, "metadata", "name").(string)
			seen[name] = true
			pod := get(o, "spec", "template", "spec")
			if get(pod, "securityContext", "runAsNonRoot") != true {
				t.Errorf("%s/%s: pod may run as root", f, name)
			}
			if get(pod, "automountServiceAccountToken") != false {
				t.Errorf("%s/%s: mounts a service account token it does not need", f, name)
			}
			for _, c := range containers(o) {
				sc := get(c, "securityContext")
				if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false ||
					!reflect.DeepEqual(get(sc, "capabilities", "drop"), []any{"ALL"}) {
					t.Errorf("%s/%s: container security context %v is not hardened", f, name, sc)
				}
				if got := get(c, "readinessProbe", "httpGet", "path"); got != "/readyz" {
					t.Errorf("%s/%s: readiness probe %v, want /readyz", f, name, got)
				}
				if got := get(c, "livenessProbe", "httpGet", "path"); got != "/healthz" {
					t.Errorf("%s/%s: liveness probe %v, want /healthz", f, name, got)
				}
				if img := get(c, "image").(string); img != "veo4k/"+name {
					t.Errorf("%s/%s: image %s, want veo4k/%s (set by kustomize)", f, name, img, name)
				}
			}
		}
	}
	for _, want := range []string{"ingress", "fetcher"} {
		if !seen[want] {
			t.Errorf("no Deployment %s", want)
		}
	}
}

func TestFetcherScalesOnItsConsumer(t *testing.T) {
	for _, o := range load(t)["fetcher.yaml"] {
		if get(o, "kind") != "ScaledObject" {
			continue
		}
		md := get(o, "spec", "triggers", 0, "metadata")
		if get(md, "stream") != stream.Callbacks || get(md, "consumer") != stream.Fetcher {
			t.Errorf("ScaledObject watches %v/%v, want %s/%s", get(md, "stream"), get(md, "consumer"), stream.Callbacks, stream.Fetcher)
		}
		return
	}
	t.Error("fetcher.yaml has no ScaledObject")
}
