#!/usr/bin/env bash
# Makes the seed corpora of the fuzz targets in tests/fuzz/corpus/<target>/ from the files this
# repository ships: tasks/*.json and tests/data/tasks_*/ (task), tests/data/datasets/*.csv plus a
# few small CSV texts (csv), models/*.xml and tests/data/mjcf/ (mjcf). The csv and mjcf inputs
# start with the two option bytes their harness reads (see fuzz_csv.c, fuzz_mjcf.c). Files named
# crash-* or regress-* (reproducers of fixed crashes) are kept; everything else is made afresh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/tests/fuzz/corpus"
mkdir -p "$out/task" "$out/csv" "$out/mjcf"
find "$out" -type f ! -name 'crash-*' ! -name 'regress-*' -delete

# task: the harness's task file sits in tasks/ beside models/ (../models/) and tasks/datasets/
for f in "$root"/tasks/*.json; do
  cp "$f" "$out/task/tasks_$(basename "$f")"
done
for d in tasks_good tasks_bad tasks_bad_run; do
  for f in "$root"/tests/data/$d/*.json; do
    sed 's#\.\./\.\./\.\./models/#../models/#' "$f" > "$out/task/${d}_$(basename "$f")"
  done
done
cat > "$out/task/data_episodes.json" <<'JSON'
{"model": "../models/pendulum.xml",
 "data": {"files": ["datasets/episodes.csv"], "columns": {"ctrl.motor": "ignore"},
          "resample": true, "stride": 2, "max_episodes": 0, "window": [0, null]},
 "cost": [{"term": "track"}],
 "theta": [{"name": "physics.hinge.damping", "init": 0.1, "bounds": [0.01, 1]}]}
JSON
cat > "$out/task/data_columns.json" <<'JSON'
{"model": "../models/pendulum.xml",
 "data": {"files": "datasets/single.csv",
          "columns": {"t_ms": {"to": "time", "scale": 0.001}, "note": "ignore",
                      "ctrl.motor": {"to": "ctrl.torque", "scale": 1, "offset": 0}},
          "resample": false, "window": [0, 0.015]},
 "theta": [{"name": "physics.arm.mass", "init": 0.5, "transform": "log",
            "prior": {"mean": 0.5, "std": 0.1}}]}
JSON

# csv: byte 0 the model (0 the box with arm and sensors, 1 the pendulum), byte 1 the options
csv() {  # name, two option bytes as \x.., text
  { printf "$2"; printf '%s' "$3"; } > "$out/csv/$1"
}
for f in "$root"/tests/data/datasets/*.csv; do
  n="$(basename "$f" .csv)"
  { printf '\x00\x00'; cat "$f"; } > "$out/csv/box_$n.csv"
  { printf '\x00\x20'; cat "$f"; } > "$out/csv/box_map_$n.csv"
  { printf '\x00\x07'; cat "$f"; } > "$out/csv/box_raw_stride4_$n.csv"
done
csv box_all.csv '\x00\x00' 'time,episode,validation,qpos.root[0],qpos.root[1],qpos.root[2],qpos.root[3],qpos.root[4],qpos.root[5],qpos.root[6],qpos.hinge,qvel.root[0],qvel.root[5],ctrl.motor,sensor.angle,sensor.acc[0],sensor.acc[1],sensor.acc[2]
0,0,0,0,0,1,1,0,0,0,0.1,0,0,0.5,0.1,0,0,9.81
0.0015,0,0,0,0,1,0.7071,0.7071,0,0,0.2,0,0,0.5,0.2,0,0,9.81
0.004,0,0,0,0,1,0,1,0,0,0.3,0,0,0.5,0.3,0,0,9.81
0,1,1,0,0,1,1,0,0,0,0.1,0,0,0.5,0.1,0,0,9.81
0.003,1,1,0,0,1,1,0,0,0,0.1,0,0,0.5,0.1,0,0,9.81
'
csv box_crlf.csv '\x00\x10' $'\xef\xbb\xbftime , qpos.hinge\r\n\r\n0, 0.5\r\n 0.001 ,0.25 \r\n0.002,0\r\n0.012,1e-3\r\n'
csv pendulum_sensors.csv '\x01\x08' 'time,qpos.hinge,qvel.hinge,ctrl.torque,sensor.hinge_pos,sensor.imu_acc[2],sensor.imu_gyro[1]
0,3.14,0,0,3.14,9.81,0
0.01,3.13,-1,0.5,3.13,9.8,-1
0.02,3.11,-2,0.5,3.11,9.7,-2
'
csv pendulum_errors.csv '\x01\x01' 'time,episode,qpos.hinge,qpos.hinge
0,0.5,1,1
0.1,0,nan,inf
'

# mjcf: byte 0 the base model (0 pendulum, 1 arm2, 2 cartpole, 3 double_pendulum, 4 hopper,
# 5 features), byte 1 the θ layout (0 every binding, k one kind) and bit 5 relocation
i=0
for f in "$root"/models/pendulum.xml "$root"/models/arm2.xml "$root"/models/cartpole.xml \
         "$root"/models/double_pendulum.xml "$root"/models/hopper.xml \
         "$root"/tests/data/mjcf/features.xml; do
  n="$(basename "$f" .xml)"
  for opt in 00 20 0f; do
    { printf "\\x0$i\\x$opt"; cat "$f"; } > "$out/mjcf/${n}_$opt.xml"
  done
  i=$((i + 1))
done
{ printf '\x05\x00'; cat "$root/tests/data/mjcf/include_main.xml"; } > "$out/mjcf/include_main.xml"
{ printf '\x00\x20'; cat "$root/tests/data/mjcf/include_main.xml"; } > "$out/mjcf/include_main_relocated.xml"
for f in "$root"/models/cartpole_swingup.xml "$root"/models/pendulum_brainbody.xml \
         "$root"/models/pendulum_noisy.xml; do
  { printf '\x00\x00'; cat "$f"; } > "$out/mjcf/other_$(basename "$f")"
done
echo "corpus: $(ls "$out/task" | wc -l) task, $(ls "$out/csv" | wc -l) csv, $(ls "$out/mjcf" | wc -l) mjcf inputs"
