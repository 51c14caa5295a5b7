import { describe, expect, it } from 'vitest';
import { isJsonFormat, renderGoTemplate, renderUserTemplate, TemplateError } from './go-template.js';
import { GoTime, goStruct } from './go-value.js';

function output() {
  return goStruct(
    {
      Name: 'docker.io/library/busybox',
      Digest: 'sha256:65ba5b69f306987624b8be58ca7156b53d90180d58042cd1d9b5a28c9388e594',
      RepoTags: ['1.36', 'latest'],
      Created: new GoTime('2023-01-02T03:04:05.123456789Z'),
      Labels: { version: '1.2', 'a.b': 'c' },
      Architecture: 'arm64',
      Os: 'linux',
      Layers: ['sha256:aaa', 'sha256:bbb'],
      LayersData: [
        goStruct(
          { MIMEType: 'x', Digest: 'sha256:aaa', Size: 3, Annotations: {} },
          'types.ImageInspectLayer',
        ),
      ],
      Env: [] as string[],
    },
    'inspect.Output',
  );
}

describe('renderGoTemplate', () => {
  it('prints fields and literal text', () => {
    expect(renderGoTemplate('Digest: {{.Digest}}', output())).toBe(
      'Digest: sha256:65ba5b69f306987624b8be58ca7156b53d90180d58042cd1d9b5a28c9388e594',
    );
    expect(renderGoTemplate('{{.Os}}/{{.Architecture}}', output())).toBe('linux/arm64');
    expect(renderGoTemplate('{{.Name}}', output())).toBe('docker.io/library/busybox');
  });

  it('follows map keys with dots and with index', () => {
    expect(renderGoTemplate('{{.Labels.version}}', output())).toBe('1.2');
    expect(renderGoTemplate('{{index .Labels "a.b"}}', output())).toBe('c');
  });

  it('prints <no value> for a missing map key and an empty string through index', () => {
    expect(renderGoTemplate('{{.Labels.nope}}', output())).toBe('<no value>');
    expect(renderGoTemplate('[{{index .Labels "nope"}}]', output())).toBe('[]');
  });

  it('prints lists, maps and times as Go does', () => {
    expect(renderGoTemplate('{{.RepoTags}}', output())).toBe('[1.36 latest]');
    expect(renderGoTemplate('{{.Labels}}', output())).toBe('map[a.b:c version:1.2]');
    expect(renderGoTemplate('{{.Created}}', output())).toBe('2023-01-02 03:04:05.123456789 +0000 UTC');
    expect(renderGoTemplate('{{.Env}}', output())).toBe('[]');
    expect(renderGoTemplate('{{index .LayersData 0}}', output())).toBe('{x sha256:aaa 3 map[]}');
  });

  it('writes JSON with the json function, map keys sorted, HTML characters as they are', () => {
    expect(renderGoTemplate('{{json .Layers}}', output())).toBe('["sha256:aaa","sha256:bbb"]');
    expect(renderGoTemplate('{{json .Labels}}', output())).toBe('{"a.b":"c","version":"1.2"}');
    expect(renderGoTemplate('{{json .}}', { a: '<&>' })).toBe('{"a":"<&>"}');
    expect(renderGoTemplate('{{.Layers | json}}', output())).toBe('["sha256:aaa","sha256:bbb"]');
  });

  it('ranges over lists and maps, with variables and else', () => {
    expect(renderGoTemplate('{{range .RepoTags}}{{.}} {{end}}', output())).toBe('1.36 latest ');
    expect(renderGoTemplate('{{range $i, $t := .RepoTags}}{{$i}}={{$t}};{{end}}', output())).toBe(
      '0=1.36;1=latest;',
    );
    expect(renderGoTemplate('{{range $k, $v := .Labels}}{{$k}}={{$v}} {{end}}', output())).toBe(
      'a.b=c version=1.2 ',
    );
    expect(renderGoTemplate('{{range .Env}}x{{else}}no env{{end}}', output())).toBe('no env');
    expect(renderGoTemplate('{{range .LayersData}}{{.Digest}} {{$.Os}}{{end}}', output())).toBe(
      'sha256:aaa linux',
    );
  });

  it('evaluates if, else if, with and comparisons', () => {
    const t = '{{if eq .Architecture "amd64"}}x86{{else if eq .Architecture "arm64"}}arm{{else}}other{{end}}';
    expect(renderGoTemplate(t, output())).toBe('arm');
    expect(renderGoTemplate('{{with .Labels.version}}v{{.}}{{end}}', output())).toBe('v1.2');
    expect(renderGoTemplate('{{if .Env}}set{{else}}empty{{end}}', output())).toBe('empty');
    expect(renderGoTemplate('{{if and .Os (not .Env)}}ok{{end}}', output())).toBe('ok');
    expect(renderGoTemplate('{{if gt (len .Layers) 1}}many{{end}}', output())).toBe('many');
  });

  it('calls printf, print, join, upper and lower', () => {
    expect(renderGoTemplate('{{printf "%s/%s %d%%" .Os .Architecture 7}}', output())).toBe('linux/arm64 7%');
    expect(renderGoTemplate('{{printf "%-6s|" .Os}}', output())).toBe('linux |');
    expect(renderGoTemplate('{{join .RepoTags ","}}', output())).toBe('1.36,latest');
    expect(renderGoTemplate('{{upper .Os}} {{.Os | lower}}', output())).toBe('LINUX linux');
    expect(renderGoTemplate('{{print 1 2 "a" "b"}}', output())).toBe('1 2ab');
  });

  it('trims whitespace around {{- and -}} and skips comments', () => {
    expect(renderGoTemplate('a  {{- .Os -}}  b{{/* note */}}', output())).toBe('alinuxb');
  });

  it('fails on a field the struct does not have, naming it', () => {
    expect(() => renderGoTemplate('{{.Nope}}', output())).toThrow(
      new TemplateError("template error at <.Nope>: can't evaluate field Nope in type inspect.Output"),
    );
    expect(() => renderGoTemplate('{{.Os.Name}}', output())).toThrow(
      /can't evaluate field Name in type string/,
    );
  });

  it('refuses unsupported syntax and malformed templates clearly', () => {
    expect(() => renderGoTemplate('{{define "x"}}{{end}}', output())).toThrow(/"define" is not supported/);
    expect(() => renderGoTemplate('{{template "x"}}', output())).toThrow(/"template" is not supported/);
    expect(() => renderGoTemplate('{{.Os', output())).toThrow(/unclosed action/);
    expect(() => renderGoTemplate('{{if .Os}}x', output())).toThrow(/missing \{\{end\}\}/);
    expect(() => renderGoTemplate('{{end}}', output())).toThrow(/unexpected \{\{end\}\}/);
    expect(() => renderGoTemplate('{{nosuch .Os}}', output())).toThrow(/function "nosuch" not defined/);
    expect(() => renderGoTemplate('{{.Os .Architecture}}', output())).toThrow(/non-function/);
    expect(() => renderGoTemplate("{{'a'}}", output())).toThrow(/character constants/);
    expect(() => renderGoTemplate('{{index .Layers 5}}', output())).toThrow(/index out of range: 5/);
  });
});

describe('renderUserTemplate', () => {
  it('adds a newline when the format does not end with one, whatever the output ends with (as skopeo)', () => {
    expect(renderUserTemplate('{{range .Layers}}{{println .}}{{end}}', { Layers: ['a', 'b'] })).toBe(
      'a\nb\n\n',
    );
    expect(renderUserTemplate('{{.Os}}\n', output())).toBe('linux\n');
  });

  it('drops a leading "table " as skopeo does', () => {
    expect(renderUserTemplate('table {{.Os}}', output())).toBe('linux\n');
  });

  it('turns typed \\t and \\n into tab and newline and ends with one newline', () => {
    expect(renderUserTemplate('{{.Os}}\\t{{.Architecture}}', output())).toBe('linux\tarm64\n');
    expect(renderUserTemplate('{{.Os}}\\n', output())).toBe('linux\n');
    expect(renderUserTemplate('{{.Os}}\n', output())).toBe('linux\n');
  });
});

describe('isJsonFormat', () => {
  it('recognises json and {{json .}} as asking for JSON output', () => {
    expect(isJsonFormat('json')).toBe(true);
    expect(isJsonFormat(' {{ json . }} ')).toBe(true);
    expect(isJsonFormat('{{json .Layers}}')).toBe(false);
    expect(isJsonFormat('{{.Digest}}')).toBe(false);
  });
});
