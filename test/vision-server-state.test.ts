/**
 * The VisionStateMachine's rules (vision-server/vision-state-machine.ts) against the OPC 40100
 * nodeset: every transition the table names exists in the nodeset's state machine types with
 * the right from/to states, the methods are refused where 40100 does not allow them, and the
 * station inspects only in Operational/ContinuousExecution.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  faultStep, inspectsIn, methodStep, startStep, PREOPERATIONAL, type VisionMethod, type VisionState,
} from '../inspector/vision-server/vision-state-machine.js';

const NODESET = readFileSync('node_modules/node-opcua-nodesets/nodesets/Opc.Ua.MachineVision.NodeSet2.xml', 'utf8');

/** The transitions of the nodeset by browse name: the states they go from and to (FromState / ToState references). */
function transitions(): Map<string, { from: string; to: string }> {
  const names = new Map<string, string>(); // NodeId -> browse name of the type-level states and transitions
  for (const m of NODESET.matchAll(/<UAObject NodeId="([^"]+)" BrowseName="1:([A-Za-z]+)" ParentNodeId="[^"]+"/g)) names.set(m[1]!, m[2]!);
  const out = new Map<string, { from: string; to: string }>();
  for (const m of NODESET.matchAll(/<UAObject NodeId="([^"]+)" BrowseName="1:([A-Za-z]+)"[^>]*>([\s\S]*?)<\/UAObject>/g)) {
    const from = /ReferenceType="FromState">([^<]+)</.exec(m[3]!)?.[1];
    const to = /ReferenceType="ToState">([^<]+)</.exec(m[3]!)?.[1];
    if (from && to) out.set(m[2]!, { from: names.get(from)!, to: names.get(to)! });
  }
  return out;
}

const ALL: VisionState[] = [
  PREOPERATIONAL, { top: 'Halted', auto: null }, { top: 'Error', auto: null },
  { top: 'Operational', auto: 'Ready' }, { top: 'Operational', auto: 'ContinuousExecution' },
];
const METHODS: VisionMethod[] = ['SelectModeAutomatic', 'StartContinuous', 'Stop', 'Abort', 'Halt', 'Reset'];

describe('VisionStateMachine rules', () => {
  const nodeset = transitions();

  it('every step takes transitions of the nodeset, from the state it leaves to the state it lands in', () => {
    expect(nodeset.size).toBeGreaterThan(20);
    const steps = [
      ...ALL.flatMap((s) => METHODS.map((m) => [s, methodStep(s, m)] as const)),
      [PREOPERATIONAL, startStep(true)] as const,
      ...ALL.map((s) => [s, faultStep(s, true, null)] as const),
      [{ top: 'Error', auto: null } as VisionState, faultStep({ top: 'Error', auto: null }, false, { top: 'Operational', auto: 'ContinuousExecution' })] as const,
      [{ top: 'Error', auto: null } as VisionState, faultStep({ top: 'Error', auto: null }, false, PREOPERATIONAL)] as const,
    ];
    let checked = 0;
    for (const [from, step] of steps) {
      if (!step) continue;
      if (step.topTransition) {
        expect(nodeset.get(step.topTransition), step.topTransition).toEqual({ from: from.top, to: step.to.top });
        checked++;
      }
      let auto: string | null = step.topTransition ? 'Initialized' : from.auto;
      for (const t of step.autoTransitions) {
        expect(nodeset.get(t)?.from, t).toBe(auto);
        auto = nodeset.get(t)!.to;
        checked++;
      }
      if (step.autoTransitions.length > 0) expect(auto).toBe(step.to.auto);
    }
    expect(checked).toBeGreaterThan(15);
  });

  it('methods are refused where the state does not allow them', () => {
    const allowed = (s: VisionState) => METHODS.filter((m) => methodStep(s, m) !== null);
    expect(allowed(PREOPERATIONAL)).toEqual(['SelectModeAutomatic', 'Halt']);
    expect(allowed({ top: 'Operational', auto: 'Ready' })).toEqual(['StartContinuous', 'Halt', 'Reset']);
    expect(allowed({ top: 'Operational', auto: 'ContinuousExecution' })).toEqual(['Stop', 'Abort', 'Halt', 'Reset']);
    expect(allowed({ top: 'Halted', auto: null })).toEqual(['Reset']);
    expect(allowed({ top: 'Error', auto: null })).toEqual(['Halt', 'Reset']);
  });

  it('the station inspects only in ContinuousExecution; every method leaves the switch where its state says', () => {
    for (const s of ALL) {
      for (const m of METHODS) {
        const step = methodStep(s, m);
        if (step) expect(step.inspecting, `${s.top}/${s.auto} ${m}`).toBe(inspectsIn(step.to));
      }
    }
    expect(startStep(false)).toBeNull(); // not inspecting at start: Preoperational, waiting for a client
    expect(startStep(true)!.to).toEqual({ top: 'Operational', auto: 'ContinuousExecution' });
    // a fault leaves the switch alone (the station's own fail-safes decide); clearing it resumes where it was
    expect(faultStep({ top: 'Operational', auto: 'ContinuousExecution' }, true, null)!.inspecting).toBeNull();
    expect(faultStep({ top: 'Halted', auto: null }, true, null)).toBeNull();
    expect(faultStep({ top: 'Error', auto: null }, false, { top: 'Operational', auto: 'Ready' })!.to).toEqual({ top: 'Operational', auto: 'Ready' });
  });
});
