# `mpiexec -n 3 interp-pool map` writes what `interp-pool map` writes: every line's result in
# input order (rank 0 reads and writes; the ranks compute), failed lines reported, exit 1.
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/f.lua "function f(line) local n = tonumber(line)\n"
  "  if n % 97 == 0 then error('no ' .. n) end\n"
  "  local s = 0 for i = 1, n * 10 do s = s + i % 3 end return n * n, s end\n")
set(lines "")
foreach(i RANGE 1 1500)
  string(APPEND lines "${i}\n")
endforeach()
file(WRITE ${WORK}/in.txt "${lines}")
execute_process(COMMAND ${CLI} map ${WORK}/f.lua f -c 7 INPUT_FILE ${WORK}/in.txt
  RESULT_VARIABLE rc1 OUTPUT_VARIABLE out1 ERROR_VARIABLE err1 TIMEOUT 60)
execute_process(COMMAND ${MPIEXEC} --oversubscribe -n 3 ${CLI} map ${WORK}/f.lua f -c 7
  INPUT_FILE ${WORK}/in.txt RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE err2
  TIMEOUT 90)
if(NOT rc1 EQUAL 1 OR NOT rc2 EQUAL 1)
  message(FATAL_ERROR "exit statuses ${rc1} (local) and ${rc2} (mpiexec), want 1 and 1\n${err2}")
endif()
if(NOT out1 STREQUAL out2)
  message(FATAL_ERROR "mpiexec's output differs from the local run's")
endif()
string(LENGTH "${out2}" len)
if(len LESS 5000)
  message(FATAL_ERROR "too little output: ${len} bytes")
endif()
string(REGEX MATCHALL "line [0-9]+:[^\n]*no [0-9]+" fails "${err2}")
list(LENGTH fails nfails)
if(NOT nfails EQUAL 15)
  message(FATAL_ERROR "${nfails} failed lines reported under mpiexec, want 15\n${err2}")
endif()
