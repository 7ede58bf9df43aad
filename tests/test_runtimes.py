"""The forms of runtime memory settings (rightsize/runtimes.py) and what a container's spec says about its runtime
(sources/runtime_specs.py): each form as its runtime reads it, malformed ones a named warning, never a guess."""
from __future__ import annotations

import math

import pytest

from rightsize import runtimes as rt
from rightsize.sources.runtime_specs import detect, image_runtime, runtime_row, runtime_rows

MIB, GIB = 2**20, 2**30


# --- the forms ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("2g", 2 * GIB), ("2G", 2 * GIB), ("2048m", 2 * GIB), ("2048M", 2 * GIB), ("2097152k", 2 * GIB),
    ("1t", 1024 * GIB), ("1T", 1024 * GIB), ("1073741824", GIB), ("0x40000000", GIB), ("512m", 512 * MIB),
])
def test_jvm_sizes(text, expected):
    assert rt.parse_jvm_size(text) == expected


@pytest.mark.parametrize("text", ["2gb", "2 g", "", "g", "-1g", "1.5g", "2x", "2GiB"])
def test_malformed_jvm_sizes_are_refused_with_the_form_expected(text):
    with pytest.raises(rt.SettingFormError, match="not a JVM size"):
        rt.parse_jvm_size(text)


@pytest.mark.parametrize("token,name,value,unit", [
    ("-Xmx2g", "heap_max", 2 * GIB, "bytes"), ("-Xmx2048m", "heap_max", 2 * GIB, "bytes"),
    ("-XX:MaxHeapSize=3g", "heap_max", 3 * GIB, "bytes"), ("-Xms512m", "heap_initial", 512 * MIB, "bytes"),
    ("-XX:MaxRAMPercentage=75.0", "max_ram_percent", 75.0, "percent"), ("-XX:MaxRAMPercentage=75", "max_ram_percent", 75.0, "percent"),
    ("-XX:MaxRAM=4g", "max_ram", 4 * GIB, "bytes"),
])
def test_jvm_flags(token, name, value, unit):
    s = rt.jvm_flag(token, "args[0]")
    assert (s.name, s.value, s.unit, s.token, s.where) == (name, value, unit, token, "args[0]")


def test_other_jvm_options_carry_no_setting():
    assert rt.jvm_flag("-XX:+UseG1GC", "x") is None and rt.jvm_flag("-Dxmx=1", "x") is None


@pytest.mark.parametrize("token,message", [
    ("-Xmx2gb", "env JAVA_TOOL_OPTIONS: -Xmx2gb: '2gb' is not a JVM size"),
    ("-XX:MaxRAMPercentage=abc", "'abc' is not a number"),
    ("-XX:MaxRAMPercentage=150", "not a percentage between 0 and 100"),
])
def test_malformed_jvm_flags_name_where_and_what(token, message):
    with pytest.raises(rt.SettingFormError, match=message):
        rt.jvm_flag(token, "env JAVA_TOOL_OPTIONS")


@pytest.mark.parametrize("text,expected", [("1800MiB", 1800 * MIB), ("2GiB", 2 * GIB), ("1024KiB", MIB), ("1TiB", 1024 * GIB),
                                           ("123B", 123), ("123", 123), ("off", math.inf)])
def test_gomemlimit(text, expected):
    assert rt.parse_gomemlimit(text) == expected


@pytest.mark.parametrize("text", ["1800MB", "1.5GiB", "1800mib", "MiB", "", "-1", "1800 MiB", "2G"])
def test_malformed_gomemlimit(text):
    with pytest.raises(rt.SettingFormError, match="not a byte count Go reads"):
        rt.parse_gomemlimit(text)


def test_gogc():
    assert rt.parse_gogc("100") == 100 and rt.parse_gogc("off") == math.inf and rt.parse_gogc("-1") == math.inf
    with pytest.raises(rt.SettingFormError, match="GOGC='50%'"):
        rt.parse_gogc("50%")


@pytest.mark.parametrize("tokens,i,value,used", [
    (["--max-old-space-size=4096"], 0, 4096 * MIB, 1), (["--max_old_space_size=512"], 0, 512 * MIB, 1),
    (["--max-old-space-size", "4096", "app.js"], 0, 4096 * MIB, 2),
])
def test_node_max_old_space_size_is_mib(tokens, i, value, used):
    s, n = rt.node_flag(tokens, i, "env NODE_OPTIONS")
    assert (s.value, n, s.flag) == (value, used, "--max-old-space-size")


@pytest.mark.parametrize("tokens,message", [(["--max-old-space-size=4g"], "not a whole number of MiB"),
                                            (["--max-old-space-size"], "has no value")])
def test_malformed_node_flags(tokens, message):
    with pytest.raises(rt.SettingFormError, match=message):
        rt.node_flag(tokens, 0, "env NODE_OPTIONS")


@pytest.mark.parametrize("name,text,value,unit", [
    ("DOTNET_GCHeapHardLimit", "0xC800000", 200 * MIB, "bytes"), ("DOTNET_GCHeapHardLimit", "C800000", 200 * MIB, "bytes"),
    ("DOTNET_GCHeapHardLimitPercent", "0x4B", 75.0, "percent"), ("DOTNET_GCHeapHardLimitPercent", "4B", 75.0, "percent"),
    ("COMPlus_GCHeapHardLimitPercent", "1E", 30.0, "percent"),
])
def test_dotnet_settings_are_hexadecimal(name, text, value, unit):
    s = rt.dotnet_setting(name, text)
    assert (s.value, s.unit) == (value, unit)


@pytest.mark.parametrize("name,text,message", [
    ("DOTNET_GCHeapHardLimit", "200Mi", "is not hexadecimal"),
    ("DOTNET_GCHeapHardLimitPercent", "75%", "is not hexadecimal"),
    ("DOTNET_GCHeapHardLimitPercent", "0x96", "150 %: not between 1 and 100"),  # decimal 96 read as hex
])
def test_malformed_dotnet_settings(name, text, message):
    with pytest.raises(rt.SettingFormError, match=message):
        rt.dotnet_setting(name, text)


def test_formats_each_runtime_reads():
    assert rt.format_jvm_size(768 * MIB) == "768m" and rt.format_jvm_size(2 * GIB) == "2g"
    assert rt.format_jvm_size(768 * MIB + 1) == "769m"  # rounded up: a heap is a floor
    assert rt.format_gomemlimit(1800 * MIB + 5) == "1800MiB"  # rounded down: a limit is a ceiling
    assert rt.format_dotnet_hex(200 * MIB) == "0xC800000" and rt.parse_dotnet_hex(rt.format_dotnet_hex(200 * MIB), "x") == 200 * MIB
    assert rt.format_node_mib(4096 * MIB) == "4096"
    for v in (768 * MIB, 3 * GIB):  # each format reads back as its value
        assert rt.parse_jvm_size(rt.format_jvm_size(v)) == v and rt.parse_gomemlimit(rt.format_gomemlimit(v)) == v


def test_rewriting_keeps_every_other_flag():
    text = "-XX:+UseG1GC  -Xmx3g -Dapp.name=x -Xms3g -javaagent:/otel.jar"
    out = rt.replace_token(rt.replace_token(text, "-Xmx3g", "-Xmx768m"), "-Xms3g", "-Xms768m")
    assert out == "-XX:+UseG1GC  -Xmx768m -Dapp.name=x -Xms768m -javaagent:/otel.jar"
    # the later flag is the one the JVM uses, so it is the one rewritten; a lookalike is left alone
    assert rt.replace_token("-Xmx1g -Xmx2g -Xmx2gx", "-Xmx2g", "-Xmx1g") == "-Xmx1g -Xmx1g -Xmx2gx"
    with pytest.raises(ValueError):
        rt.replace_token("-Xmx1g", "-Xmx2g", "-Xmx3g")


def test_new_token_keeps_the_form_written():
    node = rt.Setting("heap_max", 4096 * MIB, "bytes", "--max-old-space-size", "--max-old-space-size 4096", "command[1]")
    assert rt.new_token(node, 1024 * MIB) == "--max-old-space-size 1024"
    assert rt.new_token(rt.jvm_flag("-XX:MaxHeapSize=3g", "x"), 768 * MIB) == "-XX:MaxHeapSize=768m"
    assert rt.new_token(rt.jvm_flag("-Xmx3g", "x"), 768 * MIB) == "-Xmx768m"
    assert rt.new_token(rt.Setting("memory_limit", 1, "bytes", "GOMEMLIMIT", "1GiB", "env GOMEMLIMIT"), 900 * MIB) == "900MiB"
    assert rt.new_token(rt.dotnet_setting("DOTNET_GCHeapHardLimit", "0x1"), 200 * MIB) == "0xC800000"


# --- a container's spec ------------------------------------------------------------------------------------

def _c(**kw):
    return {"name": "app", "image": kw.pop("image", "registry.example/app:1"), **kw}


def _env(**values):
    return [{"name": k, "value": v} for k, v in values.items()]


def test_jvm_precedence_later_wins_and_the_command_line_beats_java_tool_options():
    c = _c(env=_env(JAVA_TOOL_OPTIONS="-Xmx1g -XX:+UseG1GC"), command=["java", "-Xmx2g", "-jar", "/app.jar", "-Xmx9g"])
    row = runtime_row(c, {})
    # -Xmx9g comes after -jar FILE: an argument of the application, not a JVM option
    assert (row["runtime"], row["memory_setting_bytes"], row["memory_setting_where"]) == ("jvm", 2 * GIB, "command[1]")
    c = _c(env=_env(JAVA_TOOL_OPTIONS="-Xmx1g -Xmx3g"))
    assert runtime_row(c, {})["memory_setting_token"] == "-Xmx3g"
    c = _c(env=_env(JAVA_TOOL_OPTIONS="-Xmx1g", _JAVA_OPTIONS="-Xmx4g"), command=["java", "-Xmx2g", "Main"])
    assert runtime_row(c, {})["memory_setting_bytes"] == 4 * GIB  # _JAVA_OPTIONS is read after the command line


def test_xmx_wins_over_a_percentage_whatever_the_order():
    c = _c(command=["java", "-Xmx2g", "-XX:MaxRAMPercentage=75.0", "-jar", "a.jar"])
    row = runtime_row(c, {})
    assert (row["memory_setting"], row["memory_setting_bytes"]) == ("-Xmx", 2 * GIB)
    c = _c(command=["java", "-XX:MaxRAMPercentage=75.0", "-jar", "a.jar"])
    row = runtime_row(c, {})
    assert (row["memory_setting"], row["memory_setting_percent"], math.isnan(row["memory_setting_bytes"])) == (
        "-XX:MaxRAMPercentage", 75.0, True)


def test_a_jvm_without_heap_flags_runs_at_the_default_25_percent():
    row = runtime_row(_c(image="eclipse-temurin:21-jre"), {})
    assert (row["runtime"], row["runtime_source"], row["memory_setting_percent"], row["memory_setting_where"]) == (
        "jvm", "image eclipse-temurin:21-jre", 25.0, "JVM default")
    row = runtime_row(_c(command=["java", "-XX:MaxRAM=4g", "-XX:MaxRAMPercentage=50", "Main"]), {})
    assert (row["memory_setting"], row["memory_setting_bytes"]) == ("-XX:MaxRAM", 2 * GIB)  # MaxRAM x percent


def test_sh_c_scripts_and_java_opts():
    c = _c(command=["sh", "-c", "exec java $JAVA_OPTS -Dx=1 -jar /app.jar"], env=_env(JAVA_OPTS="-Xms256m -Xmx512m"))
    row = runtime_row(c, {})
    assert (row["memory_setting_bytes"], row["memory_setting_where"], row["initial_heap_bytes"]) == (512 * MIB, "env JAVA_OPTS", 256 * MIB)
    assert row["uncertain"] == "" and row["problems"] == ""
    # java run directly does not read JAVA_OPTS: said, and the JVM default applies
    row = runtime_row(_c(command=["java", "-jar", "/app.jar"], env=_env(JAVA_OPTS="-Xmx512m")), {})
    assert "does not read it" in row["problems"] and row["memory_setting_where"] == "JVM default"
    # the image's start script: read by convention, so the setting is marked uncertain
    row = runtime_row(_c(image="tomcat:10-jdk21", env=_env(JAVA_OPTS="-Xmx512m")), {})
    assert row["memory_setting_bytes"] == 512 * MIB and "start script" in row["uncertain"]


def test_env_expansion_and_unknown_values_are_never_guessed():
    c = _c(env=[{"name": "HEAP", "value": "768m"}, {"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx$(HEAP) -Dy=$$(HEAP)"}])
    assert runtime_row(c, {})["memory_setting_bytes"] == 768 * MIB
    c = _c(env=[{"name": "JAVA_TOOL_OPTIONS", "valueFrom": {"configMapKeyRef": {"name": "jvm", "key": "opts"}}}],
           command=["java", "-XX:MaxRAMPercentage=75", "Main"])
    row = runtime_row(c, {})
    # JAVA_TOOL_OPTIONS could hold an -Xmx, which beats any percentage: the percentage is uncertain
    assert row["memory_setting_percent"] == 75 and "valueFrom configMapKeyRef jvm/opts" in row["uncertain"]
    c = _c(env=[{"name": "JAVA_TOOL_OPTIONS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
           command=["java", "-Xmx2g", "Main"])
    assert runtime_row(c, {})["uncertain"] == ""  # read before the command line, whose -Xmx wins anyway
    c = _c(env=[{"name": "JAVA_TOOL_OPTIONS", "value": "-Xmx$(LATER)"}, {"name": "LATER", "value": "1g"}])
    assert "refers to $(LATER)" in runtime_row(c, {})["uncertain"]  # Kubernetes expands only earlier variables


def test_args_given_to_an_unknown_entrypoint_are_unknown():
    row = runtime_row(_c(image="amazoncorretto:21", args=["-Xmx2g", "-jar", "app.jar"]), {})
    assert row["memory_setting_where"] == "JVM default"
    assert "args[0] -Xmx2g (given to the image's entrypoint" in row["uncertain"]


def test_go_settings():
    row = runtime_row(_c(env=_env(GOMEMLIMIT="1800MiB", GOGC="50")), {})
    assert (row["runtime"], row["memory_setting_bytes"], row["memory_setting_token"], row["gogc_percent"]) == (
        "go", 1800 * MIB, "1800MiB", 50.0)
    row = runtime_row(_c(env=[{"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]), {})
    assert (row["memory_setting_percent"], row["memory_setting_token"]) == (100.0, "resourceFieldRef limits.memory")
    row = runtime_row(_c(env=_env(GOMEMLIMIT="1800MB")), {})
    assert row["memory_setting"] == "" and "GOMEMLIMIT='1800MB' is not a byte count Go reads" in row["problems"]
    # Go stops at a GOMEMLIMIT it cannot read: what it runs with is unknown, never a guess; a bad GOGC it reads as 100
    assert row["uncertain"] == "a setting that does not parse (see problems)"
    row = runtime_row(_c(env=_env(GOMEMLIMIT="1GiB", GOGC="50%")), {})
    assert row["memory_setting_bytes"] == 2**30 and row["uncertain"] == "" and "GOGC='50%'" in row["problems"]
    assert runtime_row(_c(env=_env(GOMEMLIMIT="off")), {})["memory_setting"] == ""


def test_node_settings():
    c = _c(env=_env(NODE_OPTIONS="--enable-source-maps --max-old-space-size=1024"), command=["node", "server.js"])
    row = runtime_row(c, {})
    assert (row["memory_setting_bytes"], row["memory_setting_where"]) == (1024 * MIB, "env NODE_OPTIONS")
    c["command"] = ["node", "--max-old-space-size=4096", "server.js", "--max-old-space-size=1"]
    row = runtime_row(c, {})  # the command line wins; after the script, flags are the script's
    assert (row["memory_setting_bytes"], row["memory_setting_where"]) == (4096 * MIB, "command[1]")


def test_dotnet_settings():
    row = runtime_row(_c(image="mcr.microsoft.com/dotnet/aspnet:8.0",
                         env=_env(DOTNET_GCHeapHardLimitPercent="0x4B", DOTNET_GCHeapHardLimit="0xC800000")), {})
    assert (row["runtime"], row["memory_setting"], row["memory_setting_bytes"]) == ("dotnet", "DOTNET_GCHeapHardLimit", 200 * MIB)
    row = runtime_row(_c(env=_env(DOTNET_GCHeapHardLimitPercent="75")), {})  # 0x75 = 117 %: refused, never read as 75
    assert row["memory_setting"] == "" and "117 %" in row["problems"]


@pytest.mark.parametrize("image,runtime", [
    ("eclipse-temurin:21-jre", "jvm"), ("amazoncorretto:17", "jvm"), ("docker.io/library/openjdk:11", "jvm"),
    ("node:20-alpine", "node"), ("golang:1.22", "go"), ("mcr.microsoft.com/dotnet/aspnet:8.0", "dotnet"),
    ("quay.io/prometheus/node-exporter:v1.8.0", ""), ("nginx:1.25", ""), ("registry.example/jdk-tools@sha256:abc", "jvm"),
])
def test_image_hints(image, runtime):
    assert image_runtime(image) == runtime


def test_the_program_beats_env_and_image_and_conflicts_are_said():
    found = detect(_c(image="node:20", env=_env(JAVA_TOOL_OPTIONS="-javaagent:/otel.jar"), command=["node", "app.js"]))
    assert found.runtime == "node" and "env sets jvm settings, but the container runs node" in found.problems[0]


def test_rows_only_for_containers_with_a_runtime():
    spec = {"initContainers": [_c(image="busybox")], "containers": [_c(image="nginx"), {**_c(image="node:20"), "name": "web"}]}
    rows = runtime_rows(spec, {"cluster": "c", "namespace": "n", "kind": "Deployment", "workload": "w"})
    assert [(r["container"], r["runtime"]) for r in rows] == [("web", "node")]
