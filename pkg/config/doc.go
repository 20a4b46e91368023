package config

import (
	"fmt"
	"strings"
)

// Table renders a binary's settings as the Markdown table the README carries, so a test can
// check the README against the struct instead of trusting a hand-kept list.
func Table(binary string, spec any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- config:%s -->\n", binary)
	b.WriteString("| Variable | Default | Required | Description |\n|---|---|---|---|\n")
	for _, f := range Fields(spec) {
		def := "—"
		if f.Default != "" {
			def = "`" + f.Default + "`"
		}
		req := ""
		if f.Required {
			req = "yes"
		}
		desc := f.Desc
		if f.Secret {
			desc += " (secret: never logged)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Env, def, req, strings.ReplaceAll(desc, "|", `\|`))
	}
	fmt.Fprintf(&b, "<!-- /config:%s -->\n", binary)
	return b.String()
}
