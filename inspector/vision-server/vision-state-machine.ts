/**
 * The OPC 40100-1 VisionStateMachine of a line station, as data: which states exist, which
 * method or station event moves it where, by which transition of the nodeset, and whether
 * the station inspects in the state it lands in. The nodeset has the states and
 * transitions but no behaviour: this table is the behaviour. Pure (no node-opcua), so the
 * worker and the tests read the same rules.
 *
 * Top level: Preoperational, Operational, Halted, Error. Inside Operational the automatic
 * mode sub-machine: Initialized, Ready, ContinuousExecution (SingleExecution is not used:
 * a line station inspects every part the line triggers, not single jobs).
 *
 * The station inspects only in Operational/ContinuousExecution. Everywhere else the part
 * loop's inspecting switch is off and every part is a fail-safe reject (result code
 * INSPECTION_STOPPED), except in Error: Error only mirrors a station fault (camera, model
 * or PLC link down), where the station's own fail-safes already decide, and the switch keeps
 * its value so inspection resumes by itself when the fault clears.
 */

export type TopState = 'Preoperational' | 'Operational' | 'Halted' | 'Error';
export type AutoState = 'Initialized' | 'Ready' | 'ContinuousExecution';

export interface VisionState {
  top: TopState;
  /** the automatic-mode sub-state: set only in Operational */
  auto: AutoState | null;
}

/** One step: the state to land in, the transitions (browse names of the nodeset) taken to get there. */
export interface Step {
  to: VisionState;
  /** the top-level transition (VisionStateMachineType), if the top state changes */
  topTransition: string | null;
  /** the automatic-mode transitions (VisionAutomaticModeStateMachineType), in order */
  autoTransitions: string[];
  /** the inspecting switch after the step; null: leave it as it is */
  inspecting: boolean | null;
}

export type VisionMethod = 'SelectModeAutomatic' | 'StartContinuous' | 'Stop' | 'Abort' | 'Halt' | 'Reset';

export const PREOPERATIONAL: VisionState = { top: 'Preoperational', auto: null };

/** Whether the station inspects parts in this state (Error: whatever the switch was). */
export function inspectsIn(s: VisionState): boolean {
  return s.top === 'Operational' && s.auto === 'ContinuousExecution';
}

/**
 * Enter Operational from `from` by `topTransition`; the sub-machine starts in Initialized and,
 * the live model being loaded (the recipe is prepared), goes on to Ready; with `run` it goes on
 * to ContinuousExecution by the automatic transition (the station's start, an Error cleared).
 */
function enterOperational(topTransition: string, run: boolean): Step {
  const autoTransitions = ['InitializedToReadyAuto'];
  if (run) autoTransitions.push('ReadyToContinuousExecutionAuto');
  return { to: { top: 'Operational', auto: run ? 'ContinuousExecution' : 'Ready' }, topTransition, autoTransitions, inspecting: run };
}

/**
 * The step a method call takes from `s`, or null when the method is not allowed there
 * (the server answers BadInvalidState and nothing changes).
 */
export function methodStep(s: VisionState, m: VisionMethod): Step | null {
  switch (m) {
    case 'SelectModeAutomatic':
      return s.top === 'Preoperational' ? enterOperational('PreoperationalToOperational', false) : null;
    case 'StartContinuous':
      return s.top === 'Operational' && s.auto === 'Ready'
        ? { to: { top: 'Operational', auto: 'ContinuousExecution' }, topTransition: null, autoTransitions: ['ReadyToContinuousExecution'], inspecting: true }
        : null;
    case 'Stop':
    case 'Abort':
      return s.top === 'Operational' && s.auto === 'ContinuousExecution'
        ? { to: { top: 'Operational', auto: 'Ready' }, topTransition: null, autoTransitions: [`ContinuousExecutionToReady${m}`], inspecting: false }
        : null;
    case 'Halt':
      return s.top === 'Halted' ? null : { to: { top: 'Halted', auto: null }, topTransition: `${s.top}ToHalted`, autoTransitions: [], inspecting: false };
    case 'Reset':
      return s.top === 'Preoperational' ? null : { to: PREOPERATIONAL, topTransition: `${s.top}ToPreoperational`, autoTransitions: [], inspecting: false };
  }
}

/**
 * The automatic start of a station (or of a respawned server worker): from Preoperational to
 * Operational/ContinuousExecution when the station inspects, else it stays Preoperational and
 * waits for SelectModeAutomatic + StartContinuous.
 */
export function startStep(inspecting: boolean): Step | null {
  return inspecting ? enterOperational('PreoperationalToOperationalAuto', true) : null;
}

/**
 * A station fault raised (`fault` true) or cleared. Raised: Preoperational / Operational go to
 * Error (the sub-state is remembered in `resume`). Cleared: back where it came from by the
 * automatic transitions. Halted ignores faults (an operator halted it).
 */
export function faultStep(s: VisionState, fault: boolean, resume: VisionState | null): Step | null {
  if (fault) {
    if (s.top !== 'Preoperational' && s.top !== 'Operational') return null;
    return { to: { top: 'Error', auto: null }, topTransition: `${s.top}ToErrorAuto`, autoTransitions: [], inspecting: null };
  }
  if (s.top !== 'Error') return null;
  if (resume?.top === 'Operational') return enterOperational('ErrorToOperationalAuto', resume.auto === 'ContinuousExecution');
  return { to: PREOPERATIONAL, topTransition: 'ErrorToPreoperationalAuto', autoTransitions: [], inspecting: null };
}
