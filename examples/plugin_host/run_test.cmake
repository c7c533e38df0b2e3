# Run plugin_host on a fresh copy of the sample plugins and check that it survived every
# misbehaving plugin, kept the well-behaved ones' state, and reloaded the fixed looper.
file(REMOVE_RECURSE ${WORK})
file(COPY ${SRC}/ DESTINATION ${WORK})
execute_process(COMMAND ${HOST} ${WORK} --frames 40 --budget-ms ${BUDGET} --fix-looper-at 20
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "plugin_host exited with ${rc}")
endif()
foreach(expect
    "disabled looper: missed the frame deadline"
    "disabled bomb: hit its memory limit"
    "log: snoop: doors open: none"
    "log: medic heals entity [0-9]+ \\(hp [0-9]+\\)"
    "log: spawner asks for an entity at"
    "spawned entity 17 at \\(-?[0-9]+, -?[0-9]+\\)"
    "spawned entity 20 at"
    "entities: 20 \\(4 spawned\\)"
    "spawner: enabled, 40 good ticks"
    "error in raiser: .*refusing frame 3"
    "reloaded looper at frame 20"
    "looper: enabled, 21 good ticks"
    "medic: enabled, 40 good ticks[^\n]*state [^\n]*ticks = 40"
    "disabled bomb: hit its memory limit \\(its context: peak [0-9]+ KiB of its own [0-9]+ KiB\\)"
    "states replaced 0"
    "medic: enabled[^\n]*healed = 8"
    "mover: enabled, 40 good ticks"
    "raiser: enabled")
  if(NOT out MATCHES "${expect}")
    message(FATAL_ERROR "plugin_host output lacks: ${expect}")
  endif()
endforeach()
