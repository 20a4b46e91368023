module github.com/trigger-api/trigger-api/deploy/tests/localimage

go 1.26.0
