// Package config loads a binary's envconfig struct and describes it: for --help, for the
// start-up log line (secrets shown only as set/unset) and for the README and chart checks.
package config

import (
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"
)

// Prefix is the environment prefix of every setting.
const Prefix = "TRIGGER"

// Load fills spec from the environment. With --help or -h among args it prints the settings to
// out and returns help=true; the caller then exits 0.
func Load(spec any, args []string, out io.Writer) (help bool, err error) {
	for _, a := range args {
		if IsHelpFlag(a) {
			return true, envconfig.Usagef(Prefix, spec, out, envconfig.DefaultTableFormat)
		}
	}
	if err := envconfig.Process(Prefix, spec); err != nil {
		// envconfig names a missing variable without its prefix; name the one to set.
		msg := err.Error()
		for _, f := range Fields(spec) {
			short := strings.TrimPrefix(f.Env, Prefix+"_")
			if strings.Contains(msg, "required key "+short+" ") {
				return false, fmt.Errorf("config: %s is required", f.Env)
			}
		}
		return false, fmt.Errorf("config: %w", err)
	}
	return false, nil
}

// IsHelpFlag reports whether arg asks for the settings instead of a run.
func IsHelpFlag(arg string) bool { return arg == "--help" || arg == "-help" || arg == "-h" }

// Field describes one setting.
type Field struct {
	Env      string
	Type     string
	Default  string
	Required bool
	Secret   bool
	Desc     string
	value    reflect.Value
}

// Fields lists every setting of spec (a pointer to a struct) in declaration order, with the
// same names envconfig reads.
func Fields(spec any) []Field {
	v := reflect.ValueOf(spec)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var out []Field
	walk(Prefix, v, &out)
	return out
}

func walk(prefix string, v reflect.Value, out *[]Field) {
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		name := f.Tag.Get("envconfig")
		if name == "" {
			name = f.Name
		}
		key := strings.ToUpper(prefix + "_" + name)
		if f.Type.Kind() == reflect.Struct && f.Type.String() != "time.Time" {
			inner := key
			if f.Anonymous {
				inner = prefix
			}
			walk(inner, fv, out)
			continue
		}
		*out = append(*out, Field{
			Env:      key,
			Type:     f.Type.String(),
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Secret:   f.Tag.Get("secret") == "true",
			Desc:     f.Tag.Get("desc"),
			value:    fv,
		})
	}
}

// Effective renders the loaded settings for the start-up log, secrets as set/unset.
func Effective(spec any) []zap.Field {
	var out []zap.Field
	for _, f := range Fields(spec) {
		if f.Secret {
			state := "unset"
			if !f.value.IsZero() {
				state = "set"
			}
			out = append(out, zap.String(f.Env, state))
			continue
		}
		out = append(out, zap.Any(f.Env, f.value.Interface()))
	}
	return out
}
