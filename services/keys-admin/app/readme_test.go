package app_test

import (
	"testing"

	"github.com/trigger-api/trigger-api/pkg/config/configtest"
	"github.com/trigger-api/trigger-api/services/keys-admin/app"
)

func TestReadmeListsSettings(t *testing.T) {
	configtest.CheckReadme(t, "keys-admin", &app.Config{})
	configtest.CheckReadme(t, "keys-admin ensure-tables", &app.TablesConfig{})
}
