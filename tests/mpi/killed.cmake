# A rank killed (SIGKILL) mid-map: under Open MPI 4.1 (no ULFM) the job must end, never hang,
# with a message naming the rank: mpiexec's, and the root's last words (what each rank held).
execute_process(
  COMMAND ${MPIEXEC} --oversubscribe -n 3 ${PROG} killed
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 90)
set(all "${out}${err}")
message(STATUS "exit: ${rc}\n${all}")
if(rc STREQUAL "0" OR rc MATCHES "timeout")
  message(FATAL_ERROR "the job did not end with a failure (exit: ${rc})")
endif()
if(NOT all MATCHES "rank 2")
  message(FATAL_ERROR "no message names rank 2")
endif()
if(NOT all MATCHES "interp_mpi: root: terminated")
  message(FATAL_ERROR "the root left no last words")
endif()
if(NOT all MATCHES "rank 2 \\(pid [0-9]+\\): [0-9]+ unit\\(s\\), [0-9]+ item\\(s\\) in flight[^\n]*EXITED")
  message(FATAL_ERROR "the root's last words do not name rank 2 as the one that exited")
endif()
